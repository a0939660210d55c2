"""One clock on every page: Vietnam time by default, labelled, UTC in the tooltip; a person may
switch to UTC (then Vietnam time is the tooltip), and the choice holds on every page."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from playwright.sync_api import expect

from soc.incidents import service as incidents
from tests.dashboards.conftest import Console, Login

STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (UTC\+7|UTC)$")


def _read(text: str) -> tuple[datetime, str]:
    match = STAMP.match(text.strip())
    assert match, text
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S"), match.group(2)


def test_times_are_vietnam_time_labelled_with_utc_in_the_tooltip(
    console: Console, login: Login
) -> None:
    page = login("analyst")
    page.goto(f"/incidents/{console.data.anomaly_incident}")
    stored = incidents.get(console.es, console.indices, console.data.anomaly_incident, user=None)
    first = page.locator("dl.facts time").first
    shown, label = _read(first.inner_text())
    tip, tip_label = _read(first.get_attribute("title") or "")
    assert (label, tip_label) == ("UTC+7", "UTC")
    assert tip == stored.first_seen.replace(tzinfo=None, microsecond=0)
    assert shown - tip == timedelta(hours=7)
    # No bare UTC time elsewhere on the page: every <time> is labelled the same way.
    labels = {_read(t)[1] for t in page.locator("main time").all_inner_texts()}
    assert labels == {"UTC+7"}
    # The summary the detector wrote says Vietnam time too, labelled.
    expect(page.locator("#tz-switch")).to_contain_text("UTC")


def test_a_person_can_choose_utc_and_it_holds_on_every_page(console: Console, login: Login) -> None:
    page = login("analyst")
    page.goto(f"/incidents/{console.data.xss_incident}")
    page.click("#tz-switch")
    expect(page).to_have_url(re.compile(f"/incidents/{console.data.xss_incident}$"))
    first = page.locator("dl.facts time").first
    shown, label = _read(first.inner_text())
    tip, tip_label = _read(first.get_attribute("title") or "")
    assert (label, tip_label) == ("UTC", "UTC+7")
    assert tip - shown == timedelta(hours=7)
    # The alert queue, whose rows the live refresh redraws in JavaScript, follows the choice.
    page.goto("/alerts")
    cell = page.locator("#queue tbody tr[data-id] time").first
    expect(cell).to_have_text(re.compile(r" UTC$"))
    page.wait_for_timeout(1500)  # at least one live refresh (0.5 s in tests)
    expect(page.locator("#queue tbody tr[data-id] time").first).to_have_text(re.compile(r" UTC$"))
    assert (
        page.locator("#queue tbody tr[data-id] time").first.get_attribute("title") or ""
    ).endswith("UTC+7")
    # And back to Vietnam time.
    page.click("#tz-switch")
    expect(page.locator("#queue tbody tr[data-id] time").first).to_have_text(
        re.compile(r" UTC\+7$")
    )
