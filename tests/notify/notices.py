"""Notices for the notifier's tests, with real provinces and wards from the catalogue."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from soc.alerts.models import Severity
from soc.localities import catalogue
from soc.notify.models import IncidentNotice, NoticeEvent, SampleEvent, WardRef

HOSTILE = '<img src=x onerror="alert(1)"> login failed\r\nBcc: attacker@evil.example'


def notice(
    incident_id: str,
    province: str = "04",
    *,
    wards: int = 1,
    event: NoticeEvent = NoticeEvent.NEW,
    severity: Severity = Severity.HIGH,
    **extra: Any,
) -> IncidentNotice:
    cat = catalogue()
    prov = cat.province(province)
    picked = cat.wards_of(prov)[:wards]
    values: dict[str, Any] = {
        "incident_id": incident_id,
        "event": event,
        "title": f"Lỗi đăng nhập VNeID ({incident_id})",
        "severity": severity,
        "province_code": prov.code,
        "province_name": prov.name,
        "wards": tuple(WardRef(code=w.code, name=w.name) for w in picked),
        "service": "vneid",
        "first_seen": datetime(2026, 3, 2, 0, 45, tzinfo=UTC),
        "alert_count": 2,
        "event_count": 57,
        "samples": (
            SampleEvent(timestamp=datetime(2026, 3, 2, 0, 46, tzinfo=UTC), message=HOSTILE),
        ),
        "first_steps": "login",
    }
    values.update(extra)
    return IncidentNotice(**values)
