"""A correlation's per-province threshold from the rules page: backtested over 24 h before it is
saved (nothing stored by the try), then saved."""

from __future__ import annotations

from playwright.sync_api import expect

from detectors.sigma import service as rules
from tests.dashboards.conftest import Console, Login

RULE = "eef20f99-8bf8-4d31-9776-95641223716b"  # national database look-ups failing (correlation)
PLAIN = "0f2000dc-a5df-425c-b8f7-6fc1d5db3bde"  # vulnerability scanner (a plain rule)


def _thresholds(console: Console) -> tuple[tuple[str, int], ...]:
    rule = rules.load(settings=console.settings).get(RULE)
    return rules.tuning(es=console.es, settings=console.settings, rule=rule).thresholds


def test_a_threshold_is_tried_then_saved(console: Console, login: Login) -> None:
    page = login("admin", lang="vi")
    page.goto("/rules")
    row = page.locator(f"#rules tr[data-rule='{RULE}']")
    row.locator("details.threshold summary").click()
    row.locator(".threshold-form input[name=province]").fill("01")
    row.locator(".threshold-form input[name=count]").fill("40")
    row.locator(".threshold-form button[value=preview]").click()
    expect(page.locator("#backtest")).to_contain_text("Số cảnh báo luật sẽ phát sinh")
    expect(page.locator("#threshold-save")).to_contain_text("Chưa lưu")
    assert _thresholds(console) == ()  # a try stores nothing
    page.click("#threshold-save button[value=save]")
    expect(page.locator(".flash.good")).to_be_visible()
    assert _thresholds(console) == (("01", 40),)
    expect(row.locator("details.threshold .note")).to_have_text("01: 40")


def test_an_exception_is_tried_then_saved(console: Console, login: Login) -> None:
    page = login("admin", lang="en")
    page.goto("/rules")
    row = page.locator(f"#rules tr[data-rule='{PLAIN}']")
    row.locator("details.exception summary").click()
    row.locator(".exception-form input[name=field]").fill("source.ip")
    row.locator(".exception-form input[name=value]").fill("198.51.100.7")
    row.locator(".exception-form input[name=reason]").fill("scanner of the provincial IT team")
    row.locator(".exception-form button[value=preview]").click()
    expect(page.locator("#exception-save")).to_contain_text("Not saved yet")
    rule = rules.load(settings=console.settings).get(PLAIN)
    stored = rules.tuning(es=console.es, settings=console.settings, rule=rule)
    assert stored.exceptions == ()
    page.click("#exception-save button[value=save]")
    expect(page.locator(f"#rules tr[data-rule='{PLAIN}']")).to_contain_text(
        "source.ip = 198.51.100.7 (scanner of the provincial IT team, admin)"
    )
    stored = rules.tuning(es=console.es, settings=console.settings, rule=rule)
    assert [e.value for e in stored.exceptions] == ["198.51.100.7"]
