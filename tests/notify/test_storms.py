"""No storms: a rate limit per recipient with a digest beyond it, and escalation on time."""

from __future__ import annotations

from datetime import timedelta

from soc.alerts.models import Severity
from soc.notify import service
from soc.notify.adapter import OpenIncident, escalations_due
from soc.notify.flows import Notifier
from soc.notify.models import NoticeEvent, OutboxStatus
from soc.notify.smtp import SmtpSender
from tests.notify.conftest import Clock, Mailbox
from tests.notify.notices import notice

CAO_BANG = "it@caobang.gov.vn"
LEAD = "lead@caobang.gov.vn"
NATIONAL = "national-soc@soc.local"
SLA = timedelta(minutes=30)
MEDIUM = Severity.MEDIUM


def test_beyond_the_rate_limit_notices_wait_for_one_digest(
    notifier: Notifier, sender: SmtpSender, mailbox: Mailbox, clock: Clock
) -> None:
    # The limit is 3 emails per 10 minutes per recipient (tests/notify/conftest.py); only low and
    # medium notices are ever held.
    report = notifier.notify([notice(f"cb-{i}", "04", severity=MEDIUM) for i in range(8)])
    assert (report.queued, report.held) == (3, 5)
    notifier.send_pending(sender)
    assert len(mailbox.to(CAO_BANG)) == 3

    assert notifier.flush_digests() == 0  # just sent 3: nothing more yet
    clock.advance(seconds=150)
    assert notifier.flush_digests() == 0
    # Still 3 in the 10-minute window, but nothing for window/limit = 200 s: the held ones go.
    clock.advance(seconds=51)
    assert notifier.flush_digests() == 1
    assert notifier.flush_digests() == 0
    notifier.send_pending(sender)

    emails = mailbox.to(CAO_BANG)
    assert len(emails) == 4
    digest = emails[-1]
    assert digest["X-SOC-Event"] == "digest"
    assert digest["Subject"].startswith("[SOC][Trung bình] Tổng hợp sự cố: 5")
    body = digest.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    for i in range(3, 8):
        assert f"(cb-{i})" in text
    held = service.listing(notifier.es, notifier.indices, status=OutboxStatus.DIGESTED)
    assert len(held) == 5


def test_the_rate_limit_of_one_recipient_does_not_hold_another(
    notifier: Notifier, sender: SmtpSender, mailbox: Mailbox
) -> None:
    notices = [notice(f"cb-{i}", "04", severity=MEDIUM) for i in range(5)]
    notifier.notify([*notices, notice("lc-1", "12")])
    notifier.send_pending(sender)
    assert len(mailbox.to("it@laichau.gov.vn")) == 1


def test_digests_never_mix_provinces_of_different_recipients(
    notifier: Notifier, sender: SmtpSender, mailbox: Mailbox, clock: Clock
) -> None:
    notices = [notice(f"cb-{i}", "04", severity=MEDIUM) for i in range(5)]
    notices += [notice(f"lc-{i}", "12") for i in range(5)]
    notifier.notify(notices)
    clock.advance(minutes=11)
    notifier.flush_digests()
    notifier.send_pending(sender)
    for address, own, other in ((CAO_BANG, "cb-", "lc-"), ("it@laichau.gov.vn", "lc-", "cb-")):
        for message in mailbox.to(address):
            assert own in message["X-SOC-Incident"]
            assert other not in message["X-SOC-Incident"]


def open_incident(acknowledged: bool = False) -> OpenIncident:
    return OpenIncident(
        notice=notice("cb-1", "04"), notified_at=Clock().now, acknowledged=acknowledged
    )


def test_escalation_timing_follows_the_sla() -> None:
    start = Clock().now
    item = open_incident()
    assert escalations_due([item], start + SLA - timedelta(seconds=1), SLA) == []
    at_sla = escalations_due([item], start + SLA, SLA)
    assert [(n.event, n.level) for n in at_sla] == [(NoticeEvent.ESCALATION, 1)]
    later = escalations_due([item], start + 2 * SLA, SLA)
    assert [n.level for n in later] == [1, 2]
    assert escalations_due([open_incident(acknowledged=True)], start + 3 * SLA, SLA) == []


def test_unacknowledged_incident_escalates_to_lead_then_national_once_each(
    notifier: Notifier, sender: SmtpSender, mailbox: Mailbox, clock: Clock
) -> None:
    item = open_incident()
    notifier.notify([item.notice])
    for minutes in (10, 31, 45, 61, 75, 120):  # the scheduler asks again and again
        clock.now = item.notified_at + timedelta(minutes=minutes)
        notifier.notify(escalations_due([item], clock.now, SLA))
        notifier.send_pending(sender)

    assert len(mailbox.to(CAO_BANG)) == 1
    (lead,) = mailbox.to(LEAD)
    assert lead["Subject"].startswith("[SOC][Cao] Chuyển cấp")
    (national,) = mailbox.to(NATIONAL)
    assert national["Subject"].startswith("[SOC][High] Escalation")
    assert national["Date"] is not None
