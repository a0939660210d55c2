"""Emails end to end: outbox in Elasticsearch, a real SMTP server, the received MIME parsed."""

from __future__ import annotations

from email.message import EmailMessage

from soc.alerts.models import Severity
from soc.notify import service
from soc.notify.flows import Notifier
from soc.notify.models import NoticeEvent, OutboxStatus
from soc.notify.smtp import SmtpSender
from tests.notify.conftest import Mailbox
from tests.notify.notices import notice

CAO_BANG = "it@caobang.gov.vn"
LAI_CHAU = "it@laichau.gov.vn"
NATIONAL = "national-soc@soc.local"


def parts(message: EmailMessage) -> tuple[str, str]:
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    return str(text.get_content()), str(html.get_content())


def test_each_province_receives_only_its_own_incidents(
    notifier: Notifier, sender: SmtpSender, mailbox: Mailbox
) -> None:
    notifier.notify(
        [notice("cb-1", "04"), notice("lc-1", "12"), notice("hn-1", "01"), notice("cb-2", "04")]
    )
    report = notifier.send_pending(sender)

    assert report.sent == 4
    assert sorted(m["X-SOC-Incident"] for m in mailbox.to(CAO_BANG)) == ["cb-1", "cb-2"]
    assert [m["X-SOC-Incident"] for m in mailbox.to(LAI_CHAU)] == ["lc-1"]
    assert [m["X-SOC-Incident"] for m in mailbox.to(NATIONAL)] == ["hn-1"]
    for message in mailbox.to(CAO_BANG):
        text, html = parts(message)
        assert "Cao Bằng" in text
        assert "Lai Châu" not in text + html
        assert "Hà Nội" not in text + html
    assert all(len(r.rcpt) == 1 for r in mailbox.received)


def test_both_parts_in_each_recipients_language(
    notifier: Notifier, sender: SmtpSender, mailbox: Mailbox
) -> None:
    notifier.notify([notice("cb-1", "04"), notice("lc-1", "12")])
    notifier.send_pending(sender)

    (vi,) = mailbox.to(CAO_BANG)
    assert vi["Subject"].startswith("[SOC][Cao] Sự cố mới: Cao Bằng / Phường Thục Phán")
    assert vi["Content-Language"] == "vi"
    text, html = parts(vi)
    for part in (text, html):
        assert "Việc cần làm trước tiên" in part
        assert "Đăng nhập VNeID" in part
        assert "https://soc.example.vn/incidents/cb-1" in part

    (en,) = mailbox.to(LAI_CHAU)
    assert en["Subject"].startswith("[SOC][High] New incident: Lai Châu")
    text, html = parts(en)
    assert "What to do first" in text
    assert "What to do first" in html


def test_hostile_log_content_is_text_and_injects_no_header(
    notifier: Notifier, sender: SmtpSender, mailbox: Mailbox
) -> None:
    hostile = notice("cb-1", "04", title="Tấn công\r\nBcc: attacker@evil.example")
    notifier.notify([hostile])
    notifier.send_pending(sender)

    (received,) = mailbox.received
    assert received.rcpt == [CAO_BANG]
    message = received.message
    assert message["Bcc"] is None
    assert "\n" not in message["Subject"]
    text, html = parts(message)
    assert "<img" not in html
    assert "&lt;img src=x onerror=" in html
    assert "login failed\\r\\nBcc: attacker@evil.example" in text


def test_message_id_is_the_outbox_id_and_nothing_is_sent_twice(
    notifier: Notifier, sender: SmtpSender, mailbox: Mailbox
) -> None:
    first = notifier.notify([notice("cb-1", "04")])
    again = notifier.notify([notice("cb-1", "04")])
    notifier.send_pending(sender)
    notifier.send_pending(sender)

    assert (first.queued, again.queued, again.duplicates) == (1, 0, 1)
    (message,) = mailbox.to(CAO_BANG)
    stored = service.get(notifier.es, notifier.indices, message["Message-ID"])
    assert stored is not None
    assert stored.message.status is OutboxStatus.SENT
    assert stored.message.attempts == 1


def test_one_email_for_a_parent_incident_across_communes(
    notifier: Notifier, sender: SmtpSender, mailbox: Mailbox
) -> None:
    notifier.notify([notice("cb-parent", "04", wards=12)])
    notifier.send_pending(sender)

    (message,) = mailbox.to(CAO_BANG)
    assert "12 xã/phường" in message["Subject"]
    text, _ = parts(message)
    assert text.count("(0") >= 12  # every commune is listed with its code


def test_a_refused_recipient_fails_visibly_and_does_not_block_the_others(
    notifier: Notifier, sender: SmtpSender, mailbox: Mailbox
) -> None:
    mailbox.handler.refuse.add(LAI_CHAU)
    notifier.notify([notice("lc-1", "12"), notice("cb-1", "04"), notice("hn-1", "01")])
    report = notifier.send_pending(sender)

    assert (report.sent, report.failed) == (2, 1)
    assert {r.rcpt[0] for r in mailbox.received} == {CAO_BANG, NATIONAL}
    (failed,) = service.listing(notifier.es, notifier.indices, status=OutboxStatus.FAILED)
    assert failed.message.recipient.address == LAI_CHAU
    assert failed.message.last_error is not None
    assert "550" in failed.message.last_error
    # A permanent failure is not retried.
    assert notifier.send_pending(sender).sent == 0


def test_severity_raised_and_resolved_notices(
    notifier: Notifier, sender: SmtpSender, mailbox: Mailbox
) -> None:
    notifier.notify([notice("cb-1", "04", severity=Severity.MEDIUM)])
    notifier.notify(
        [notice("cb-1", "04", event=NoticeEvent.SEVERITY_RAISED, severity=Severity.CRITICAL)]
    )
    notifier.notify([notice("cb-1", "04", event=NoticeEvent.RESOLVED, status="resolved")])
    notifier.send_pending(sender)

    subjects = sorted(m["Subject"] for m in mailbox.to(CAO_BANG))
    assert len(subjects) == 3
    assert any(s.startswith("[SOC][Nghiêm trọng] Mức độ tăng") for s in subjects)
    assert any("Đã khắc phục" in s for s in subjects)
    resolved = next(m for m in mailbox.to(CAO_BANG) if "Đã khắc phục" in m["Subject"])
    text, _ = parts(resolved)
    assert "Sự cố đã được đánh dấu là đã khắc phục" in text
    assert "Việc cần làm trước tiên" not in text
