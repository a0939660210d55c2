"""The notification policy: a critical or high is never held; Vietnamese subjects and bodies reach
the mail client as rendered (parsed from what the real SMTP server received)."""

from __future__ import annotations

import email
from email.policy import default as default_policy

from hypothesis import given, settings
from hypothesis import strategies as st

from soc.alerts.models import Severity
from soc.notify import service
from soc.notify.flows import Notifier
from soc.notify.models import OutboxMessage, OutboxStatus, Recipient
from soc.notify.render import Renderer
from soc.notify.smtp import SmtpSender, build_email
from tests.notify.conftest import Clock, Mailbox
from tests.notify.notices import notice

CAO_BANG = "it@caobang.gov.vn"


def test_a_critical_or_high_is_never_held_whatever_the_rate(
    notifier: Notifier, sender: SmtpSender, mailbox: Mailbox
) -> None:
    # The limit is 3 emails per 10 minutes per recipient (tests/notify/conftest.py).
    storm = [notice(f"m-{i}", "04", severity=Severity.MEDIUM) for i in range(5)]
    urgent = [notice(f"c-{i}", "04", severity=Severity.CRITICAL) for i in range(4)]
    urgent += [notice(f"h-{i}", "04", severity=Severity.HIGH) for i in range(4)]
    report = notifier.notify([*storm, *urgent])
    assert report.held == 2, "only the medium ones beyond the limit wait for a digest"
    held = service.listing(notifier.es, notifier.indices, status=OutboxStatus.HELD)
    assert {s.message.incident_ids[0] for s in held} <= {f"m-{i}" for i in range(5)}
    notifier.send_pending(sender)
    received = {m["X-SOC-Incident"] for m in mailbox.to(CAO_BANG)}
    assert {n.incident_id for n in urgent} <= received


SUBJECT_WORDS = ["Cổng", "thông", "tin", "điện", "tử", "Hà", "Nội", "Phường", "Ba", "Đình",
                 "·", "/", "Sự", "cố", "mới", "Đồng", "Nai", "VNeID", "OTP", "[SOC]"]  # fmt: skip


def _message(subject: str) -> OutboxMessage:
    rendered = Renderer().notice(notice("inc-subject", "01"), Recipient(address=CAO_BANG))
    return OutboxMessage(
        message_id="<subject-test@soc.local>", created=Clock().now, event="new",
        incident_ids=("inc-subject",), province_codes=("01",),
        recipient=Recipient(address=CAO_BANG, name="Phòng CNTT Hà Nội"),
        subject=subject, text=rendered.text, html=rendered.html, next_attempt=Clock().now,
    )  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(SUBJECT_WORDS), min_size=1, max_size=40))
def test_any_vietnamese_subject_round_trips_through_the_email_parser(words: list[str]) -> None:
    subject = " ".join(words)
    raw = build_email(_message(subject), "SOC <soc@soc.local>").as_bytes()
    parsed = email.message_from_bytes(raw, policy=default_policy)
    assert str(parsed["Subject"]) == subject
    assert all(len(line) <= 78 for line in raw.split(b"\r\n\r\n")[0].split(b"\r\n"))


def test_the_subject_received_by_the_smtp_server_is_exactly_the_rendered_one(
    notifier: Notifier, sender: SmtpSender, mailbox: Mailbox
) -> None:
    title = "Cổng thông tin điện tử Hà Nội không phản hồi"
    item = notice("inc-cb", "04", wards=1, title=title)
    [recipient] = notifier.routes.recipients(item)  # Cao Bằng's IT, in Vietnamese
    rendered = notifier.renderer.notice(item, recipient)
    notifier.notify([item])
    notifier.send_pending(sender)
    [received] = mailbox.to(CAO_BANG)
    assert received["Subject"] == rendered.subject
    assert "Cao Bằng" in received["Subject"]
    assert "Cổng thông tin điện tử" in received["Subject"]
    body = received.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "Số sự kiện: 57" in text
    assert "Trạng thái: Mới" in text


def test_every_status_is_translated_in_both_languages() -> None:
    from soc.incidents.models import IncidentStatus
    from soc.notify import texts
    from soc.notify.models import Language, NoticeEvent

    for language in Language:
        for status in IncidentStatus:
            assert texts.status_label(language, status.value) != status.value
        for event in NoticeEvent:
            assert texts.event_label(language, event)
