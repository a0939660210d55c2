"""The outage drill: SMTP is down while incidents are raised; once it is back every expected
email arrives exactly once, and every failed attempt was recorded meanwhile."""

from __future__ import annotations

from collections import Counter

from soc.notify import service
from soc.notify.flows import Notifier
from soc.notify.models import OutboxStatus
from soc.notify.smtp import SmtpSender
from tests.notify.conftest import Clock, Mailbox
from tests.notify.notices import notice


def test_smtp_down_then_back_every_email_arrives_exactly_once(
    notifier: Notifier, sender: SmtpSender, mailbox: Mailbox, clock: Clock
) -> None:
    mailbox.stop()
    notices = [notice("cb-1", "04"), notice("cb-2", "04"), notice("lc-1", "12")]
    notices += [notice("hn-1", "01", wards=3)]
    notifier.notify(notices)

    for _ in range(3):  # the scheduler keeps trying while the server is down
        report = notifier.send_pending(sender)
        assert report.sent == 0
        clock.advance(minutes=2)
    pending = service.listing(notifier.es, notifier.indices, status=OutboxStatus.PENDING)
    assert len(pending) == 4
    assert all(p.message.last_error for p in pending)
    assert [p.message.attempts for p in pending] == [3, 3, 3, 3]  # every email, every tick

    notifier.notify(notices)  # the incidents are raised again meanwhile: still one email each
    mailbox.start()
    clock.advance(hours=1)
    assert notifier.send_pending(sender).sent == 4
    clock.advance(hours=1)
    assert notifier.send_pending(sender).sent == 0

    ids = Counter(r.message["Message-ID"] for r in mailbox.received)
    assert len(ids) == 4
    assert set(ids.values()) == {1}
    got = Counter(r.message["X-SOC-Incident"] for r in mailbox.received)
    assert got == Counter({"cb-1": 1, "cb-2": 1, "lc-1": 1, "hn-1": 1})


def test_retries_back_off_and_end_in_a_visible_failure(
    notifier: Notifier, sender: SmtpSender, mailbox: Mailbox, clock: Clock
) -> None:
    mailbox.stop()
    notifier.notify([notice("cb-1", "04")])
    assert notifier.send_pending(sender).retrying == 1
    # Backoff: 10 s after the first failure, so nothing is due 5 s later.
    clock.advance(seconds=5)
    assert notifier.send_pending(sender).retrying == 0
    for _ in range(4):  # max 5 attempts in the test settings
        clock.advance(hours=1)
        notifier.send_pending(sender)
    (failed,) = service.listing(notifier.es, notifier.indices, status=OutboxStatus.FAILED)
    assert failed.message.attempts == 5
    assert failed.message.last_error is not None
    assert failed.message.last_error.startswith("gave up after 5 attempts")
