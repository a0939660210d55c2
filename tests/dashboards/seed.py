"""Data for the browser tests, written the way production writes it: events through
``soc.events.service``, alerts as detectors write them, incidents by the grouping.

Attacker-controlled text (a user agent and a URL carrying script) is planted in the indexed events
and in alert titles and summaries, exactly where log content reaches the console.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from elasticsearch import Elasticsearch

from soc.alerts import service as alerts
from soc.alerts.models import Alert, Detector, Entity, Place, RuleRef, Severity, Window
from soc.config import Settings
from soc.es.indices import Indices
from soc.es.templates import setup
from soc.events.service import event_id, index_events
from soc.incidents.grouping import group_pending
from soc.localities import catalogue
from soc.notify import service as outbox
from soc.notify.models import OutboxMessage, OutboxStatus, Recipient
from tests.incidents.factory import T0, make_alert, wards, write

SCRIPT = "<script>window.__xss=1</script>"
IMG = '"><img src=x onerror=window.__xss=1>'


@dataclass(frozen=True)
class Seeded:
    xss_incident: str
    anomaly_incident: str
    hcm_incident: str
    hcm_title: str
    queue_titles: tuple[str, ...]


def _events(province: str, ward: str, n: int) -> list[dict[str, Any]]:
    p = catalogue().province(province)
    w = catalogue().ward(ward, p)
    return [
        {
            "@timestamp": (T0 + timedelta(minutes=1, seconds=i)).isoformat(),
            "event": {
                "kind": "event",
                "action": "login",
                "outcome": "failure",
                "dataset": "vneid.access",
            },
            "service": {"name": "vneid"},
            "source": {"ip": f"203.0.113.{10 + i}"},
            "user": {"name": f"citizen{i}"},
            "url": {"original": f"/login?next={IMG}"},
            "user_agent": {"original": SCRIPT},
            "http": {"response": {"status_code": 401}},
            "locality": {
                "province": {"code": p.code, "name": p.name},
                "ward": {"code": w.code, "name": w.name},
            },
        }
        for i in range(n)
    ]


def _anomaly(province: str, ward: str, step: int) -> Alert:
    p = catalogue().province(province)
    w = catalogue().ward(ward, p)
    start = T0 + timedelta(minutes=5 * step)
    observed = [120, 118, 40, 12, 9, 30][step]
    return Alert(
        detector=Detector.ANOMALY,
        rule=RuleRef(id="anomaly-drop", name="Traffic drop", level=Severity.HIGH),
        severity=Severity.HIGH,
        title=f"Traffic drop: VNeID login, {w.name}",
        summary=f"{observed} events where about 115 were expected",
        window=Window(start=start, end=start + timedelta(minutes=5)),
        place=Place(province_code=p.code, province_name=p.name, ward_code=w.code,
                    ward_name=w.name),
        service="vneid",
        entity=Entity(type="service", value="vneid"),
        group={"ward": w.code, "service": "vneid"},
        count=observed,
        score=0.97,
        explanation={"kind": "drop", "features": [{"feature": "count", "unit": "events",
                     "observed": observed, "expected": 115, "band": [80, 150]}]},
        created=start + timedelta(minutes=5),
    )  # fmt: skip


def _email(incident_id: str) -> OutboxMessage:
    """An email queued for an incident, its subject carrying the planted title as notify does."""
    return OutboxMessage(
        message_id=f"<{incident_id}-new@soc.test>",
        created=T0 + timedelta(minutes=11),
        event="new",
        incident_ids=(incident_id,),
        province_codes=("01",),
        recipient=Recipient(address="it-hanoi@soc.test"),
        subject=f"[soc] critical: {SCRIPT} VNeID login failures",
        text="see the console",
        html="<p>see the console</p>",
        status=OutboxStatus.SENT,
        attempts=1,
        next_attempt=T0 + timedelta(minutes=11),
        sent=T0 + timedelta(minutes=11),
    )


def seed(es: Elasticsearch, indices: Indices, settings: Settings) -> Seeded:
    setup(es, indices)
    hanoi = wards("01", 3)
    events = _events("01", hanoi[0], 3)
    index_events(es, indices, events, refresh=True)
    xss = make_alert(province="01", ward=hanoi[0], rule="vneid-login-failures",
                     title=f"{SCRIPT} VNeID login failures")  # fmt: skip
    xss = xss.model_copy(update={"summary": f"URL {IMG}", "event_ids": tuple(map(event_id, events)),
                                 "severity": Severity.CRITICAL})  # fmt: skip
    anomalies = [_anomaly("01", hanoi[1], step) for step in range(6)]
    hcm_title = "HCMC one-stop-shop errors (private to HCMC)"
    hcm = make_alert(province="79", ward=wards("79", 1)[0], rule="one-stop-errors", title=hcm_title)
    write(es, indices, xss, *anomalies, hcm)
    group_pending(es, indices, settings)  # as `soc detect` does: incidents, alerts attached

    def incident_of(alert: Alert) -> str:
        found = alerts.get(es, indices, alert.id, user=None).incident_id
        assert found is not None
        return found

    # Ungrouped alerts for the queue's bulk triage, in Hà Nội and in Hồ Chí Minh City.
    queue = [
        make_alert(province="01", ward=hanoi[2], rule=f"queue-{n}", minute=20 + n,
                   title=f"Queue alert {n}", severity=Severity.MEDIUM)
        for n in range(3)
    ]  # fmt: skip
    write(es, indices, *queue)
    xss_id = incident_of(xss)
    outbox.create(es, indices, _email(xss_id))
    es.indices.refresh(index=f"{indices.prefix}-*")
    return Seeded(
        xss_incident=xss_id,
        anomaly_incident=incident_of(anomalies[0]),
        hcm_incident=incident_of(hcm),
        hcm_title=hcm_title,
        queue_titles=tuple(a.title for a in queue),
    )
