"""An accessibility check of the main pages in Chromium: a language, a name for every control and
chart, WCAG AA contrast of text against its background, and the board usable from the keyboard."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.dashboards.conftest import Console, Login

#: The checks run in the page: tests/dashboards/a11y.js (controls without a name, low contrast).
_JS = (Path(__file__).parent / "a11y.js").read_text(encoding="utf-8")
_UNNAMED = f"() => {{ {_JS}; return unnamed(); }}"
_LOW_CONTRAST = f"() => {{ {_JS}; return lowContrast(); }}"


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_main_pages_have_names_contrast_and_a_language(
    console: Console, login: Login, lang: str
) -> None:
    page = login("admin", lang=lang)
    incident = f"/incidents/{console.data.anomaly_incident}"
    paths = ["/", "/provinces/01", "/alerts", "/incidents", incident, "/rules", "/durations"]
    paths.append("/outbox")
    for path in paths:
        page.goto(path)
        assert page.locator("html").get_attribute("lang") == lang
        assert page.locator("h1").count() >= 1, path
        assert page.evaluate(_UNNAMED) == [], path
        for svg in page.locator("svg[role=img]").all():
            assert svg.get_attribute("aria-label"), path
        assert page.evaluate(_LOW_CONTRAST) == [], path


def test_the_board_works_from_the_keyboard(console: Console, login: Login) -> None:
    page = login("analyst")
    page.goto("/")
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('tile')"):
            break
    focused = page.locator("#provinces .tile:focus")
    expect(focused).to_have_count(1)
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    code = focused.get_attribute("data-code")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{console.url}/provinces/{code}")
