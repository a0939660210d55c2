"""soc.incidents → emails: what each incident state sends, asked again and again by a scheduler."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from soc.alerts.models import Severity
from soc.incidents.models import Incident, IncidentStatus
from soc.localities import catalogue
from soc.notify.adapter import notify_incidents
from soc.notify.flows import Notifier
from soc.notify.smtp import SmtpSender
from tests.notify.conftest import Clock, Mailbox

CAO_BANG = "it@caobang.gov.vn"


def incident(clock: Clock, **changes: Any) -> Incident:
    now = clock.now
    values: dict[str, Any] = {
        "id": "inc-cb-otp",
        "title": "OTP failures surge",
        "severity": Severity.HIGH,
        "group_key": "g",
        "cause_key": "c",
        "detector": "sigma",
        "rule_id": "otp-fail-surge",
        "rule_name": "OTP failures surge",
        "province_code": "04",
        "province_name": "Cao Bằng",
        "ward_code": "01273",
        "ward_name": "Phường Thục Phán",
        "service": "otp-gateway",
        "alert_count": 4,
        "first_seen": now - timedelta(minutes=5),
        "last_seen": now,
        "created": now,
        "updated": now,
        "ack_due": now + timedelta(minutes=30),
        "resolve_due": now + timedelta(hours=4),
    }
    values.update(changes)
    return Incident(**values)


def run(notifier: Notifier, sender: SmtpSender, *incidents: Incident) -> None:
    notify_incidents(notifier, incidents)
    notifier.send_pending(sender)


def subjects(mailbox: Mailbox, address: str = CAO_BANG) -> list[str]:
    return [str(m["Subject"]) for m in mailbox.to(address)]


def test_an_incidents_life_sends_new_raised_and_resolved_once_each(
    notifier: Notifier, sender: SmtpSender, mailbox: Mailbox, clock: Clock
) -> None:
    inc = incident(clock, severity=Severity.MEDIUM)
    run(notifier, sender, inc)
    run(notifier, sender, inc)  # the next tick sees the same incident: nothing new
    assert len(subjects(mailbox)) == 1
    assert "Cổng SMS OTP" in subjects(mailbox)[0]

    raised = inc.model_copy(update={"severity": Severity.CRITICAL})
    run(notifier, sender, raised)
    run(notifier, sender, raised)
    assert len(subjects(mailbox)) == 2
    assert subjects(mailbox)[1].startswith("[SOC][Nghiêm trọng] Mức độ tăng")

    done = raised.model_copy(update={"status": IncidentStatus.RESOLVED})
    run(notifier, sender, done)
    run(notifier, sender, done)
    assert len(subjects(mailbox)) == 3
    assert "Đã khắc phục" in subjects(mailbox)[2]


def test_a_parent_incident_is_one_email_and_its_children_none(
    notifier: Notifier, sender: SmtpSender, mailbox: Mailbox, clock: Clock
) -> None:
    wards = [w.code for w in catalogue().wards_of("04")[:5]]
    parent = incident(clock, id="inc-parent", is_parent=True, ward_codes=tuple(wards),
                      ward_code=None, ward_name=None)  # fmt: skip
    children = [
        incident(clock, id=f"inc-child-{code}", parent_id="inc-parent", ward_code=code)
        for code in wards
    ]
    run(notifier, sender, parent, *children)

    (email,) = mailbox.to(CAO_BANG)
    assert email["X-SOC-Incident"] == "inc-parent"
    assert "5 xã/phường" in email["Subject"]


def test_an_unacknowledged_incident_escalates_at_its_ack_deadline(
    notifier: Notifier, sender: SmtpSender, mailbox: Mailbox, clock: Clock
) -> None:
    inc = incident(clock)
    run(notifier, sender, inc)
    clock.now = inc.ack_due - timedelta(seconds=1)
    run(notifier, sender, inc)
    assert mailbox.to("lead@caobang.gov.vn") == []
    clock.now = inc.ack_due
    run(notifier, sender, inc)
    assert len(mailbox.to("lead@caobang.gov.vn")) == 1

    acknowledged = inc.model_copy(
        update={"status": IncidentStatus.ACKNOWLEDGED, "acknowledged": clock.now}
    )
    clock.now += timedelta(hours=2)
    run(notifier, sender, acknowledged)
    assert mailbox.to("national-soc@soc.local") == []


def test_a_false_positive_sends_nothing(
    notifier: Notifier, sender: SmtpSender, mailbox: Mailbox, clock: Clock
) -> None:
    run(notifier, sender, incident(clock, status=IncidentStatus.FALSE_POSITIVE))
    assert mailbox.received == []
