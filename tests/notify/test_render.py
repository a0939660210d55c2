"""Templates: both languages with their diacritics, hostile log text shown as text, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from soc.notify.models import Language, NoticeEvent, Recipient
from soc.notify.render import Renderer, sample_notice

VI = Recipient(address="it@caobang.gov.vn", language=Language.VI)
EN = Recipient(address="it@caobang.gov.vn", language=Language.EN)


def test_vietnamese_email_has_its_diacritics_and_the_facts() -> None:
    out = Renderer("https://soc.example.vn").notice(sample_notice(), VI)
    assert out.subject.startswith("[SOC][Cao] Sự cố mới: Cao Bằng / Phường Thục Phán")
    for part in (out.text, out.html):
        assert "Việc cần làm trước tiên" in part
        assert "Bắt đầu từ" in part
        assert "01/07/2025 08:30 UTC+7" in part  # 01:30 UTC shown in Vietnam time, labelled
        assert "VNEID-401" in part
        assert "https://soc.example.vn/incidents/inc-demo-0001" in part


def test_english_email_uses_english_labels_and_keeps_place_names() -> None:
    out = Renderer().notice(sample_notice(), EN)
    assert out.subject.startswith("[SOC][High] New incident: Cao Bằng")
    assert "What to do first" in out.text
    assert "Việc cần làm" not in out.text


def test_log_content_is_text_in_both_parts() -> None:
    out = Renderer().notice(sample_notice(), EN)
    assert "<script>" not in out.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in out.html
    # CR/LF from a log line stays visible on the same line, never a new line of its own.
    assert "&lt;/script&gt;\\r\\nBcc: victim@example.org" in out.html
    assert "</script>\\r\\nBcc: victim@example.org" in out.text
    assert not any(line.startswith("Bcc:") for line in out.text.splitlines())


def test_subject_is_one_line_whatever_the_title() -> None:
    hostile = sample_notice().model_copy(update={"title": "x\r\nBcc: a@evil.example\nTo: b"})
    subject = Renderer().notice(hostile, EN).subject
    assert "\r" not in subject
    assert "\n" not in subject


@pytest.mark.parametrize("event", list(NoticeEvent))
def test_every_event_renders_in_both_languages(event: NoticeEvent) -> None:
    for who in (VI, EN):
        out = Renderer().notice(sample_notice(event), who)
        assert out.text.strip()
        assert out.html.strip()


def test_a_valid_override_is_used(tmp_path: Path) -> None:
    (tmp_path / "notice_subject.txt").write_text("[Tỉnh] {{ n.title }}", "utf-8")
    renderer = Renderer(override_dir=tmp_path)
    assert renderer.refused == {}
    assert (
        renderer.notice(sample_notice(), VI).subject == "[Tỉnh] Lỗi đăng nhập VNeID tăng đột biến"
    )


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("{% if n.title %}never closed", "TemplateSyntaxError"),
        ("{{ n.no_such_field }}", "Undefined"),
    ],
)
def test_a_broken_override_is_refused_and_the_default_kept(
    tmp_path: Path, source: str, problem: str
) -> None:
    (tmp_path / "notice.html").write_text(source, "utf-8")
    renderer = Renderer(override_dir=tmp_path)
    assert problem in renderer.refused["notice.html"]
    assert str(tmp_path / "notice.html") in renderer.refused["notice.html"]
    assert "Bằng chứng" in renderer.notice(sample_notice(), VI).html
