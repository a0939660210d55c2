"""``/api/v1/alerts``: list and filter alerts, read one, triage (acknowledge, false positive;
attaching to an incident is an incidents route, :mod:`soc.incidents.alert_views`).

Every signed-in user reads alerts of their provinces; triage is for ``admin`` and ``analyst``.
Routes only validate and call ``soc.alerts.service``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from soc import problems
from soc.alerts import service
from soc.alerts.models import Alert, AlertStatus, Severity
from soc.auth import audit
from soc.deps import Analyst, AnyUser, EsDep, IndicesDep, UtcDatetime, client_ip
from soc.errors import RequestError
from soc.services import Service

router = APIRouter(prefix="/alerts", tags=["alerts"], responses=problems.RESPONSES)

AlertId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class AlertRead(BaseModel):
    id: str
    status: AlertStatus
    incident_id: str | None
    triage: dict[str, Any]
    alert: Alert


class AlertList(BaseModel):
    items: list[AlertRead]
    total: int
    page: int
    size: int


def _read(stored: service.StoredAlert) -> AlertRead:
    return AlertRead(
        id=stored.alert.id,
        status=stored.status,
        incident_id=stored.incident_id,
        triage=stored.triage,
        alert=stored.alert,
    )


@router.get("", response_model=AlertList)
def list_alerts(
    es: EsDep,
    indices: IndicesDep,
    user: AnyUser,
    province: Annotated[str | None, Query(pattern=r"^[0-9]{2}$")] = None,
    ward: Annotated[str | None, Query(pattern=r"^[0-9]{5}$")] = None,
    service_name: Annotated[Service | None, Query(alias="service")] = None,
    severity: Severity | None = None,
    status: AlertStatus | None = None,
    rule_id: Annotated[str | None, Query(max_length=256)] = None,
    incident_id: Annotated[str | None, Query(max_length=64)] = None,
    since: UtcDatetime | None = None,
    until: UtcDatetime | None = None,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AlertList:
    if page * size > 10_000:
        raise RequestError("page * size must stay within 10000: narrow the filter")
    flt = service.AlertFilter(
        province=province,
        ward=ward,
        service=service_name.value if service_name else None,
        severity=severity.value if severity else None,
        status=status.value if status else None,
        rule_id=rule_id,
        incident_id=incident_id,
        since=since,
        until=until,
        page=page,
        size=size,
    )
    items, total = service.search(es, indices, flt, user=user)
    return AlertList(items=[_read(s) for s in items], total=total, page=page, size=size)


@router.get("/{alert_id}", response_model=AlertRead)
def get_alert(alert_id: AlertId, es: EsDep, indices: IndicesDep, user: AnyUser) -> AlertRead:
    return _read(service.get(es, indices, alert_id, user=user))


def _triage(
    es: EsDep,
    indices: IndicesDep,
    user: Analyst,
    request: Request,
    alert_id: str,
    verdict: AlertStatus,
) -> AlertRead:
    stored = service.get(es, indices, alert_id, user=user)
    service.triage(es, indices, alert_id, verdict=verdict, actor=user.name, now=datetime.now(UTC))
    place = stored.alert.place
    audit.record(
        es,
        indices,
        actor=user,
        action=f"alert.{verdict.value}",
        target_type="alert",
        target_id=alert_id,
        provinces=[place.province_code] if place else [],
        now=datetime.now(UTC),
        ip=client_ip(request),
    )
    return _read(service.get(es, indices, alert_id, user=user))


@router.post("/{alert_id}/acknowledge", response_model=AlertRead)
def acknowledge(
    alert_id: AlertId, es: EsDep, indices: IndicesDep, user: Analyst, request: Request
) -> AlertRead:
    return _triage(es, indices, user, request, alert_id, AlertStatus.ACKNOWLEDGED)


@router.post("/{alert_id}/false-positive", response_model=AlertRead)
def false_positive(
    alert_id: AlertId, es: EsDep, indices: IndicesDep, user: Analyst, request: Request
) -> AlertRead:
    return _triage(es, indices, user, request, alert_id, AlertStatus.FALSE_POSITIVE)
