"""Alerts as the detectors write them, for the incident and API tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from elasticsearch import Elasticsearch

from soc.alerts.models import Alert, Detector, Entity, Place, RuleRef, Severity, Window
from soc.es.indices import Indices
from soc.localities import catalogue

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def make_alert(
    *,
    minute: int = 0,
    province: str = "01",
    ward: str | None = None,
    rule: str = "vneid-login-failures",
    service: str = "vneid",
    severity: Severity = Severity.HIGH,
    entity: str | None = None,
    title: str = "VNeID login failures",
    detector: Detector = Detector.SIGMA,
    count: int = 12,
    window_minutes: int = 5,
    second: int = 0,
) -> Alert:
    start = T0 + timedelta(minutes=minute, seconds=second)
    p = catalogue().province(province)
    w = catalogue().ward(ward, p) if ward else None
    return Alert(
        detector=detector,
        rule=RuleRef(id=rule, name=title, level=severity),
        severity=severity,
        title=title,
        summary=f"{title} in {w.name if w else p.name}",
        window=Window(start=start, end=start + timedelta(minutes=window_minutes)),
        place=Place(
            province_code=p.code,
            province_name=p.name,
            ward_code=w.code if w else None,
            ward_name=w.name if w else None,
        ),
        service=service,
        entity=Entity(type="user.name", value=entity) if entity else None,
        group={"ward": w.code if w else "", **({"user.name": entity} if entity else {})},
        count=count,
        created=start + timedelta(minutes=window_minutes),
    )


def write(es: Elasticsearch, indices: Indices, *alerts: Alert) -> None:
    """Write alerts exactly as a detector does: deterministic id, op_type=create."""
    for alert in alerts:
        es.create(index=indices.alerts, id=alert.id, document=alert.to_doc())
    es.indices.refresh(index=indices.alerts)


def wards(province: str, n: int) -> list[str]:
    return [w.code for w in catalogue().wards_of(province)[:n]]
