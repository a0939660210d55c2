"""The alert queue: what just fired, newest first, with its incident; filters, bulk triage, and a
JSON feed for live refresh.

Grouping attaches every alert to an incident within seconds, so "attached" is not a verdict: the
``new`` filter means *not yet judged by an analyst* (new or attached), and each row names its
incident (title, status) so triage happens with the incident in view. Alerts of the last
``FRESH`` are marked as just fired.

Reads through ``soc.alerts.service.search`` (scoped to the user's provinces); verdicts through
``soc.alerts.service.triage`` and attachments through ``soc.incidents.flows.attach_alert``, each
audited like the API's. A bulk action applies to each selected alert on its own and reports how many
succeeded and why the others did not. Routes only validate and call those services.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dashboards.pages import Page, PageDep, form, render, safe_next
from soc.alerts import service as alerts
from soc.alerts.models import AlertStatus, Severity
from soc.auth import audit
from soc.deps import client_ip
from soc.errors import RequestError, SocError
from soc.incidents import flows
from soc.incidents import service as incidents
from soc.incidents.models import Incident, utcnow
from soc.services import Service

router = APIRouter()

_VERDICTS = {"acknowledge": AlertStatus.ACKNOWLEDGED, "false_positive": AlertStatus.FALSE_POSITIVE}
_ID = r"^[A-Za-z0-9_-]{1,64}$"
#: An alert younger than this is shown as just fired.
FRESH = timedelta(minutes=15)


@dataclass(frozen=True)
class Filters:
    province: str | None
    ward: str | None
    service: Service | None
    severity: Severity | None
    status: AlertStatus | None
    rule: str | None

    def to_filter(self, size: int = 100) -> alerts.AlertFilter:
        untriaged = self.status is AlertStatus.NEW
        return alerts.AlertFilter(
            province=self.province,
            ward=self.ward,
            service=self.service.value if self.service else None,
            severity=self.severity.value if self.severity else None,
            status=self.status.value if self.status and not untriaged else None,
            statuses=(AlertStatus.NEW.value, AlertStatus.ATTACHED.value) if untriaged else (),
            rule_id=self.rule,
            size=size,
        )

    def query(self) -> str:
        values = {
            "province": self.province,
            "ward": self.ward,
            "service": self.service.value if self.service else None,
            "severity": self.severity.value if self.severity else None,
            "status": self.status.value if self.status else None,
            "rule": self.rule,
        }
        return urlencode({k: v for k, v in values.items() if v})


def _filters(**values: Any) -> Filters:
    fields = ("province", "ward", "service", "severity", "status", "rule")
    return Filters(**{name: values.get(name) for name in fields})


def _with_empty_as_none(request: Request) -> dict[str, str]:
    # A filter form sends every field, the unset ones empty: treat those as absent.
    return {k: v for k, v in request.query_params.items() if v}


@router.get("/alerts", response_class=HTMLResponse)
def queue(page: PageDep, request: Request) -> Response:
    cleaned = _with_empty_as_none(request)
    if len(cleaned) != len(request.query_params):
        return RedirectResponse(f"/alerts?{urlencode(cleaned)}", status_code=303)
    flt = _filters(**_parsed(cleaned))
    items, total = alerts.search(page.es, page.indices, flt.to_filter(), user=page.user)
    now = utcnow()
    return render(
        page,
        "alerts.html",
        items=items,
        total=total,
        incidents=_incidents_of(page, items),
        fresh={s.alert.id for s in items if now - s.alert.created <= FRESH},
        filters=flt,
        query=flt.query(),
        severities=list(Severity),
        statuses=list(AlertStatus),
        done=request.query_params.get("done", ""),
        poll_ms=int(page.settings.dashboards_poll_seconds * 1000),
    )


def _parsed(raw: dict[str, str]) -> dict[str, Any]:
    """Query values into the filter's types; a bad value is a 400 naming the field."""
    out: dict[str, Any] = {}
    kinds: dict[str, Any] = {"service": Service, "severity": Severity, "status": AlertStatus}
    for name, value in raw.items():
        if name not in ("province", "ward", "service", "severity", "status", "rule"):
            continue
        try:
            out[name] = kinds[name](value) if name in kinds else value
        except ValueError:
            raise RequestError(f"filter {name!r}: unknown value") from None
    for name, size in (("province", 2), ("ward", 5)):
        if name in out and not (out[name].isdigit() and len(out[name]) == size):
            raise RequestError(f"filter {name!r}: expected {size} digits")
    if "rule" in out and len(out["rule"]) > 256:
        raise RequestError("filter 'rule': at most 256 characters")
    return out


@router.get("/alerts/feed.json")
def feed(page: PageDep, request: Request) -> dict[str, Any]:
    """The queue's first page as JSON, for the page's live refresh (rendered as text by JS)."""
    flt = _filters(**_parsed(_with_empty_as_none(request)))
    items, total = alerts.search(page.es, page.indices, flt.to_filter(), user=page.user)
    found = _incidents_of(page, items)
    now = utcnow()
    rows = [_row(page, s, found.get(s.incident_id or ""), now) for s in items]
    return {"total": total, "items": rows}


def _incidents_of(page: Page, items: list[alerts.StoredAlert]) -> dict[str, Incident]:
    ids = [s.incident_id for s in items if s.incident_id]
    return incidents.get_many(page.es, page.indices, ids, user=page.user)


def _row(
    page: Page, stored: alerts.StoredAlert, incident: Incident | None, now: datetime
) -> dict[str, Any]:
    a = stored.alert
    return {
        "id": a.id,
        "created": a.created.isoformat(),
        "fresh": now - a.created <= FRESH,
        "severity": a.severity.value,
        "status": stored.status.value,
        "title": a.title,
        "rule": a.rule.name or a.rule.id,
        "service": page.service_label(a.service),
        "province": a.place.province_name if a.place else "",
        "ward": (a.place.ward_name or "") if a.place else "",
        "incident_id": stored.incident_id,
        "incident_title": incident.title if incident else "",
        "incident_status": incident.status.value if incident else "",
    }


@router.post("/alerts/bulk")
async def bulk(request: Request, page: PageDep) -> Response:
    posted = await form(request, page)
    page.require_triage()
    ids = [i for i in posted.all("ids") if i]
    action = posted.get("action")
    if not ids:
        raise RequestError("select at least one alert")
    if len(ids) > 200:
        raise RequestError("at most 200 alerts at a time")
    ok, failed = 0, []
    for alert_id in dict.fromkeys(ids):
        try:
            _apply(page, request, alert_id, action, posted.get("incident_id").strip())
        except SocError as exc:
            failed.append(f"{alert_id}: {exc}")
        else:
            ok += 1
    back = safe_next(posted.get("back"), "/alerts")
    if failed:
        return render(page, "bulk_result.html", 409, ok=ok, failed=failed, back=back)
    sep = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{sep}done={ok}", status_code=303)


def _apply(page: Page, request: Request, alert_id: str, action: str, incident_id: str) -> None:
    if not re.match(_ID, alert_id):
        raise RequestError("not an alert id")
    if action == "attach":
        if not re.match(_ID, incident_id):
            raise RequestError("attach needs an incident id")
        caller = flows.Caller(page.user, client_ip(request))
        flows.attach_alert(page.es, page.indices, alert_id, incident_id, caller=caller)
        return
    verdict = _VERDICTS.get(action)
    if verdict is None:
        raise RequestError(f"unknown bulk action {action[:40]!r}")
    stored = alerts.get(page.es, page.indices, alert_id, user=page.user)
    now = utcnow()
    alerts.triage(page.es, page.indices, alert_id, verdict=verdict, actor=page.user.name, now=now)
    place = stored.alert.place
    audit.record(page.es, page.indices, actor=page.user, action=f"alert.{verdict.value}",
                 target_type="alert", target_id=alert_id,
                 provinces=[place.province_code] if place else [], now=now,
                 ip=client_ip(request))  # fmt: skip
