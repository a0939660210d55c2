"""Every new outage reaches provincial IT, once: alerts → incidents by episode and cause → emails
received by a real SMTP server (aiosmtpd), one pipeline round at a time with a settable clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from soc.alerts.models import Alert, Detector, Entity, Place, RuleRef, Severity, Window
from soc.config import Settings
from soc.es.indices import Indices
from soc.events.service import index_events
from soc.incidents.episodes import close_recovered
from soc.incidents.grouping import group_pending
from soc.incidents.models import Incident
from soc.localities import catalogue
from soc.notify import service as outbox
from soc.notify.adapter import notify_incidents
from soc.notify.flows import Notifier
from soc.notify.render import Renderer
from soc.notify.routing import parse_routes
from soc.notify.scheduled import incidents_to_check
from soc.notify.smtp import SmtpSender
from tests.incidents.factory import T0, write
from tests.notify.conftest import Clock, Mailbox

IT = "it@caobang.gov.vn"
NATIONAL = "national-soc@soc.local"
PROVINCE = "04"  # Cao Bằng
PROBE_DOWN = "9bb2015e-a5db-4e90-953b-519af6d705f5"
OTP_BRUTE_FORCE = "e1ad0e27-a708-480e-bc49-aae69d270e53"
OTP_VERIFY_FAILURE = "0920a9a4-d62b-4335-abe2-636757e94541"
ROUTES = f"""\
national_soc: {NATIONAL}
routes:
  - province: "{PROVINCE}"
    min_severity: medium
    contacts: [{IT}]
"""


def wards(n: int) -> list[str]:
    return [w.code for w in catalogue().wards_of(PROVINCE)[:n]]


def alert(
    rule: str, ward: str | None, at: datetime, *, service: str = "web-portal",
    detector: Detector = Detector.SIGMA, severity: Severity = Severity.HIGH,
    entity: tuple[str, str] | None = None, group: dict[str, str] | None = None,
    window: float = 60.0, count: int = 5,
) -> Alert:  # fmt: skip
    cat = catalogue()
    p = cat.province(PROVINCE)
    w = cat.ward(ward, p) if ward else None
    start = at - timedelta(seconds=window)
    return Alert(
        detector=detector,
        rule=RuleRef(id=rule, name=f"rule {rule[:8]}", level=severity),
        severity=severity,
        title=f"{rule[:8]} at {w.name if w else p.name}",
        window=Window(start=start, end=at),
        place=Place(province_code=p.code, province_name=p.name,
                    ward_code=w.code if w else None, ward_name=w.name if w else None),
        service=service,
        entity=Entity(type=entity[0], value=entity[1]) if entity else None,
        group=group if group is not None else {"locality.ward.code": ward or ""},
        count=count,
        created=at,
    )  # fmt: skip


def probes(ward: str, *states: tuple[float, bool], service: str = "web-portal") -> list[Any]:
    w = catalogue().ward(ward, PROVINCE)
    return [
        {
            "@timestamp": (T0 + timedelta(seconds=s)).isoformat(),
            "event": {"dataset": "probe.http", "kind": "metric"},
            "service": {"name": service},
            "soc": {"probe": {"up": up, "target": f"{service}-{ward}"}},
            "locality": {
                "province": {"code": PROVINCE, "name": "Cao Bằng"},
                "ward": {"code": w.code, "name": w.name},
            },
        }
        for s, up in states
    ]


@dataclass
class Pipeline:
    """The worker's rounds (group, close recovered episodes, notify, send) at a chosen time."""

    es: Elasticsearch
    indices: Indices
    settings: Settings
    notifier: Notifier
    clock: Clock
    mailbox: Mailbox

    def round(self, at: datetime) -> None:
        self.clock.now = at
        group_pending(self.es, self.indices, self.settings)
        close_recovered(self.es, self.indices, self.settings, at)
        notify_incidents(self.notifier, incidents_to_check(self.es, self.indices))
        self.notifier.flush_digests()
        with SmtpSender(self.settings) as sender:
            self.notifier.send_pending(sender)

    def to(self, address: str) -> list[tuple[str, str]]:
        """(incident id, event) of every email the address received."""
        return [(m["X-SOC-Incident"], m["X-SOC-Event"]) for m in self.mailbox.to(address)]

    def incidents(self) -> list[Incident]:
        self.es.indices.refresh(index=self.indices.incidents)
        return sorted(incidents_to_check(self.es, self.indices), key=lambda i: i.created)


@pytest.fixture
def pipeline(
    es: Elasticsearch, ready: Indices, settings: Settings, mailbox: Mailbox, clock: Clock
) -> Pipeline:
    tuned = settings.model_copy(update={"smtp_port": mailbox.port, "smtp_timeout": 2.0})
    routes = parse_routes(ROUTES, NATIONAL, source="routes.yaml")
    notifier = Notifier(es, ready, tuned, routes, Renderer("https://soc.example.vn"), clock)
    return Pipeline(es, ready, tuned, notifier, clock, mailbox)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_flapping_endpoint_gives_two_notified_episodes(pipeline: Pipeline) -> None:
    [w] = wards(1)
    index_events(pipeline.es, pipeline.indices,
                 probes(w, (0, False), (30, True), (40, True), (50, True), (60, True), (90, False)),
                 refresh=True)  # fmt: skip
    write(pipeline.es, pipeline.indices, alert(PROBE_DOWN, w, at(5)))
    pipeline.round(at(7))
    pipeline.round(at(70))  # the probes answer again: the first episode is over
    write(pipeline.es, pipeline.indices, alert(PROBE_DOWN, w, at(95)))
    pipeline.round(at(97))

    first, second = pipeline.incidents()
    assert (first.status.value, second.status.value) == ("resolved", "new")
    assert (second.episode, second.previous_id) == (2, first.id)
    assert pipeline.to(IT) == [(first.id, "new"), (first.id, "resolved"), (second.id, "new")]
    assert [e.action for e in first.timeline] == ["open", "recovered"]


def test_an_outage_during_an_unrelated_open_incident_is_emailed_at_once(
    pipeline: Pipeline,
) -> None:
    blip, outage = wards(2)
    # A short blip in one commune, 15 minutes before an outage of the same kind in another.
    write(pipeline.es, pipeline.indices, alert(PROBE_DOWN, blip, at(5)))
    pipeline.round(at(7))
    first_alert = at(15 * 60)
    write(pipeline.es, pipeline.indices, alert(PROBE_DOWN, outage, first_alert),
          alert(PROBE_DOWN, blip, first_alert))  # fmt: skip
    pipeline.round(first_alert + timedelta(seconds=2))

    mails = pipeline.mailbox.to(IT)
    by_ward = {i.ward_code: i for i in pipeline.incidents() if i.status.is_open}
    assert set(by_ward) == {blip, outage}, "neither commune swallowed the other"
    assert (by_ward[blip].episode, by_ward[outage].episode) == (2, 1)
    emailed = {m["X-SOC-Incident"] for m in mails if m["X-SOC-Event"] == "new"}
    assert {by_ward[blip].id, by_ward[outage].id} <= emailed
    queued = outbox.listing(pipeline.es, pipeline.indices, incident_id=by_ward[outage].id)
    assert all(s.message.created - first_alert <= timedelta(seconds=60) for s in queued)


def test_one_cause_seen_by_sigma_and_the_anomaly_model_is_one_incident_and_one_email(
    pipeline: Pipeline,
) -> None:
    [w] = wards(1)
    otp = "otp-gateway"
    account = ("user.name", "0912345678")
    write(
        pipeline.es, pipeline.indices,
        alert(OTP_VERIFY_FAILURE, w, at(10), service=otp, severity=Severity.LOW,
              entity=("source.ip", "203.0.113.9")),  # from a sample: not the cause's entity
        alert(OTP_BRUTE_FORCE, w, at(20), service=otp, entity=account,
              group={"user.name": account[1]}, window=300),
        alert("anomaly-otp-verify-failure", w, at(40), service=otp, detector=Detector.ANOMALY,
              entity=("service", otp), window=900,
              group={"level": "ward", "province": PROVINCE, "ward": w, "service": otp}),
    )  # fmt: skip
    pipeline.round(at(42))
    pipeline.round(at(60))

    [incident] = pipeline.incidents()
    assert set(incident.detectors) == {"sigma", "anomaly"}
    assert incident.alert_count == 3
    assert incident.event_count == 15
    assert (incident.entity_type, incident.entity_value) == account
    assert incident.failure_class == "auth-failure"
    assert pipeline.to(IT) == [(incident.id, "new")]
    assert pipeline.to(NATIONAL) == [(incident.id, "new")]  # high: the national SOC's copy
    body = pipeline.mailbox.to(IT)[0].get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "Số sự kiện: 15" in text
    assert "Trạng thái: Mới" in text


def test_twenty_communes_with_one_cause_give_one_parent_and_one_email(pipeline: Pipeline) -> None:
    communes = wards(20)
    write(pipeline.es, pipeline.indices, *(
        alert("anomaly-outage", w, at(30 + i), service="one-stop-shop",
              detector=Detector.ANOMALY, window=900,
              group={"level": "ward", "province": PROVINCE, "ward": w, "service": "one-stop-shop"})
        for i, w in enumerate(communes)
    ))  # fmt: skip
    pipeline.round(at(60))

    found = pipeline.incidents()
    [parent] = [i for i in found if i.is_parent]
    assert set(parent.ward_codes) == set(communes)
    assert all(i.parent_id == parent.id for i in found if not i.is_parent)
    assert pipeline.to(IT) == [(parent.id, "new")]
    body = pipeline.mailbox.to(IT)[0].get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    for code in communes:
        assert f"({code})" in text


def test_a_commune_joining_a_parent_is_a_notified_update(pipeline: Pipeline) -> None:
    communes = wards(4)
    outage = [
        alert("anomaly-outage", w, at(30 + i), service="one-stop-shop", detector=Detector.ANOMALY,
              window=900, group={"level": "ward", "ward": w})
        for i, w in enumerate(communes)
    ]  # fmt: skip
    write(pipeline.es, pipeline.indices, *outage[:3])
    pipeline.round(at(40))
    write(pipeline.es, pipeline.indices, outage[3])
    pipeline.round(at(70))

    [parent] = [i for i in pipeline.incidents() if i.is_parent]
    assert len(parent.ward_codes) == 4
    assert pipeline.to(IT) == [(parent.id, "new"), (parent.id, "communes_added-4")]


def test_nobody_is_paged_during_maintenance_and_the_incident_is_marked(
    pipeline: Pipeline,
) -> None:
    from soc.incidents import silences
    from soc.incidents.silences import Silence

    [w] = wards(1)
    window = Silence(province_code=PROVINCE, ward_code=w, service="web-portal", start=at(0),
                     end=at(600), reason="thay ổ cứng", created_by="it", created=at(0))  # fmt: skip
    silences.create(pipeline.es, pipeline.indices, window)
    write(pipeline.es, pipeline.indices, alert(PROBE_DOWN, w, at(5)))
    pipeline.round(at(7))
    [incident] = pipeline.incidents()
    assert incident.maintenance_id == window.id
    assert "maintenance" in [e.action for e in incident.timeline]
    assert pipeline.to(IT) == [], "planned work pages nobody"
    # The work overruns: the window ends, the failure goes on, the usual email goes out.
    for second in (250, 500, 601):
        write(pipeline.es, pipeline.indices, alert(PROBE_DOWN, w, at(second)))
        pipeline.round(at(second + 2))
    assert pipeline.to(IT) == [(incident.id, "new")]
    pipeline.round(at(620))
    assert pipeline.to(IT) == [(incident.id, "new")]
