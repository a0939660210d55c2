"""The alert queue shows what just fired, with its incident, even though the grouping attaches
every alert to an incident within seconds; bulk triage still works from that view."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import expect

from soc.alerts import service as alerts
from soc.incidents.grouping import group_pending
from soc.incidents.models import utcnow
from soc.localities import catalogue
from tests.dashboards.conftest import Console, Login, shot
from tests.incidents.factory import make_alert, wards, write

TITLE = "Đăng nhập VNeID thất bại hàng loạt"


def test_just_fired_alerts_show_with_their_incident_and_can_be_triaged(
    console: Console, login: Login
) -> None:
    now = utcnow()
    fired = make_alert(province="48", ward=wards("48", 1)[0], rule="queue-just-fired", title=TITLE)
    fired = fired.model_copy(update={"created": now - timedelta(minutes=2)})
    write(console.es, console.indices, fired)
    group_pending(console.es, console.indices, console.settings)  # as the pipeline does at once
    stored = alerts.get(console.es, console.indices, fired.id, user=None)
    assert stored.incident_id is not None
    assert stored.status.value == "attached"

    page = login("analyst", lang="vi")
    page.goto("/alerts")
    page.click("#queue-views a[href='/alerts?status=new']")
    row = page.locator(f"#queue tr[data-id='{fired.id}']")
    expect(row).to_have_class("fresh")
    expect(row.locator(".badge-fresh")).to_have_text("mới")
    expect(row.locator("td.incident a")).to_have_attribute(
        "href", f"/incidents/{stored.incident_id}"
    )
    expect(row.locator("td.incident a")).to_contain_text(TITLE)
    expect(row.locator("td.incident .tag")).to_have_text("new")
    # The live refresh redraws the same: just fired, with its incident.
    page.wait_for_timeout(1200)
    expect(row.locator("td.incident a")).to_contain_text(TITLE)
    expect(row.locator(".badge-fresh")).to_be_visible()
    shot(page, "alert-queue-just-fired")
    # Bulk triage from this view: acknowledged, it leaves the untriaged view, keeps its incident.
    row.locator("input[type=checkbox]").check()
    page.click("#do-ack")
    expect(page.locator(".flash.good")).to_contain_text("1")
    expect(page.locator(f"#queue tr[data-id='{fired.id}']")).to_have_count(0)
    page.goto("/alerts?status=acknowledged")
    expect(page.locator(f"#queue tr[data-id='{fired.id}'] td.incident a")).to_contain_text(TITLE)
    after = alerts.get(console.es, console.indices, fired.id, user=None)
    assert after.status.value == "acknowledged"
    assert after.incident_id == stored.incident_id


def test_provincial_it_sees_no_other_province_in_the_queue(console: Console, login: Login) -> None:
    page = login("hanoi-it")
    page.goto("/alerts")
    expect(page.locator("#queue tbody tr[data-id]").first).to_be_visible()
    expect(page.locator("#queue")).not_to_contain_text(console.data.hcm_title)
    feed = page.request.get("/alerts/feed.json").json()
    assert feed["items"]
    assert {i["province"] for i in feed["items"]} == {catalogue().province("01").name}
