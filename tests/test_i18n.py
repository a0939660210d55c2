"""soc.i18n: one catalogue (.po, read by Babel at run time) for the console, emails and services."""

from __future__ import annotations

from babel.messages.pofile import read_po

from soc.i18n import LOCALE_DIR, Texts, text
from soc.services import Service


def test_every_key_is_translated_in_both_languages() -> None:
    for domain in ("console", "email", "services"):
        keys = {}
        for lang in ("vi", "en"):
            with (LOCALE_DIR / lang / "LC_MESSAGES" / f"{domain}.po").open("rb") as po:
                keys[lang] = {m.id for m in read_po(po) if m.id and m.string}
        assert keys["vi"] == keys["en"], domain


def test_texts_fall_back_to_the_key_and_read_as_a_mapping() -> None:
    assert text("console", "login", "vi") == "Đăng nhập"
    assert text("console", "login", "xx") == "Đăng nhập"  # unknown language: Vietnamese
    assert text("console", "no_such_label", "vi") == "no_such_label"
    email = Texts("email", "en")
    assert email["event.new"] == "New incident"
    assert email.get("status.nope", "nope") == "nope"
    assert Service.VNEID.label_vi == "Đăng nhập VNeID"
