"""The console in Debian's Chromium: every role logs in, walks the board, triages, moves an
incident, uploads a rule; planted script stays text; forms without the CSRF token are refused.

Screenshots of the main pages are written to docs/screenshots/ (the README shows them).
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from dashboards import tilemap
from soc.alerts import service as alerts
from soc.alerts.models import AlertStatus
from soc.auth.models import Role, User
from soc.incidents import service as incidents
from soc.localities import catalogue
from tests.dashboards.conftest import Console, Login, shot
from tests.dashboards.seed import IMG, SCRIPT

FIXED_RULE = """title: Uploaded VNeID login failure
id: 7f1b9d7e-0000-4000-8000-000000000001
status: test
logsource:
  product: soc
  service: vneid
detection:
  selection:
    event.action: login
    event.outcome: failure
  condition: selection
level: low
"""
HANOI = catalogue().province("01").name
HCMC = catalogue().province("79").name


def xss_fired(page: Page) -> bool:
    return bool(page.evaluate("typeof window.__xss !== 'undefined'"))


def test_login_page_then_every_role_signs_in_and_sees_its_provinces(
    browser: Browser, console: Console, login: Login
) -> None:
    context = browser.new_context(base_url=console.url, viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.goto("/alerts")  # no session: sent to the login page, keeping where it was going
    expect(page).to_have_url(re.compile(r"/login\?next=/alerts$"))
    page.fill("input[name=username]", "analyst")
    page.fill("input[name=password]", "wrong password")
    page.click("form[action='/login'] button[type=submit]")
    expect(page.locator(".flash.bad")).to_be_visible()
    shot(page, "login")
    context.close()

    seen = {}
    for name in ("admin", "analyst", "hanoi-it", "hcm-it"):
        page = login(name)
        expect(page.locator("#provinces .tile").first).to_be_visible()
        seen[name] = page.locator("#provinces .tile .name").all_inner_texts()
        if name == "admin":
            shot(page, "status-board")
            expect(page.locator("nav a[href='/rules']")).to_be_visible()
        else:
            expect(page.locator("nav a[href='/rules']")).to_have_count(0)
    assert len(seen["admin"]) == len(seen["analyst"]) == 34
    # The map shows short names ("Hà Nội"); the full one is in the tile's title.
    assert seen["hanoi-it"] == [tilemap.short_name(HANOI)]
    assert seen["hcm-it"] == [tilemap.short_name(HCMC)]


def test_board_drills_into_a_province_its_communes_and_a_service(
    console: Console, login: Login
) -> None:
    page = login("analyst")
    tile = page.locator("#provinces .tile[data-code='01']")
    # Commune incidents only: YELLOW for the province (its RED communes show inside).
    expect(tile).to_have_class(re.compile(r"\bYELLOW\b"))
    tile.click()
    expect(page).to_have_url(re.compile(r"/provinces/01$"))
    expect(page.locator("h1")).to_contain_text(HANOI)
    communes = page.locator("#communes tbody tr")
    assert communes.count() == len(catalogue().wards_of("01"))
    expect(page.locator("#communes tbody tr.RED")).to_have_count(2)
    shot(page, "province")
    page.click("#services a[href='/provinces/01?service=vneid']")
    expect(page).to_have_url(re.compile(r"service=vneid"))
    expect(page.locator("#services tr.selected")).to_contain_text("VNeID")
    # The communes with open VNeID incidents come first.
    first = page.locator("#communes tbody tr").first.locator("td").nth(2)
    expect(first).not_to_have_text("0")


def test_provincial_user_never_sees_another_province(console: Console, login: Login) -> None:
    page = login("hanoi-it")
    for path in ("/provinces/79", f"/incidents/{console.data.hcm_incident}"):
        response = page.goto(path)
        assert response is not None
        assert response.status == 404, path
        expect(page.locator("h1")).to_contain_text("404")
    page.goto("/alerts")
    expect(page.locator("#queue")).to_contain_text("Queue alert 0")
    expect(page.locator("#queue")).not_to_contain_text(console.data.hcm_title)
    page.goto("/incidents?open=false")
    expect(page.locator("#incidents")).not_to_contain_text(console.data.hcm_title)
    expect(page.locator("#incidents")).to_contain_text("Traffic drop")
    response = page.goto("/rules")
    assert response is not None
    assert response.status == 403


def test_bulk_triage_with_the_keyboard_and_the_buttons(console: Console, login: Login) -> None:
    page = login("analyst")
    page.goto("/alerts?province=01&severity=medium")
    rows = page.locator("#queue tbody tr[data-id]")
    expect(rows).to_have_count(3)
    ids = [rows.nth(i).get_attribute("data-id") for i in range(3)]
    # Keyboard: j moves, x selects, a acknowledges the selection.
    page.locator("body").press("j")
    page.locator("body").press("x")
    page.locator("body").press("j")
    page.locator("body").press("x")
    page.locator("body").press("a")
    expect(page.locator(".flash.good")).to_contain_text("2")
    # The buttons: the third one is a false positive.
    page.locator(f"#queue tr[data-id='{ids[2]}'] input[type=checkbox]").check()
    page.click("#do-fp")
    expect(page.locator(".flash.good")).to_contain_text("1")
    analyst = User(name="analyst", role=Role.ANALYST)
    got = [alerts.get(console.es, console.indices, i or "", user=analyst) for i in ids]
    assert [g.status for g in got] == [
        AlertStatus.ACKNOWLEDGED,
        AlertStatus.ACKNOWLEDGED,
        AlertStatus.FALSE_POSITIVE,
    ]
    assert {g.triage["by"] for g in got} == {"analyst"}
    # Live refresh redraws the rows from the JSON feed with the new statuses.
    expect(page.locator(f"#queue tr[data-id='{ids[2]}'] td.status")).to_have_text(
        "false_positive", timeout=10_000
    )
    expect(page.locator("#live")).to_be_visible()
    # Attach to an incident: the alert joins the incident's evidence.
    page.locator(f"#queue tr[data-id='{ids[0]}'] input[type=checkbox]").check()
    page.fill("#attach-to", console.data.xss_incident)
    page.click("#do-attach")
    expect(page.locator(".flash.good")).to_contain_text("1")
    attached = incidents.get(console.es, console.indices, console.data.xss_incident, user=None)
    assert ids[0] in attached.alert_ids
    assert alerts.get(console.es, console.indices, ids[0] or "", user=None).incident_id == (
        console.data.xss_incident
    )
    # Incidents in bulk: two provinces' incidents assigned at once.
    page.goto("/incidents")
    for incident_id in (console.data.xss_incident, console.data.hcm_incident):
        page.locator(f"#incidents tr[data-id='{incident_id}'] input[type=checkbox]").check()
    page.fill("#incident-bulk input[name=assignee]", "duty-analyst")
    page.click("#bulk-assign")
    expect(page.locator(".flash.good")).to_contain_text("2")
    for incident_id in (console.data.xss_incident, console.data.hcm_incident):
        stored = incidents.get(console.es, console.indices, incident_id, user=None)
        assert stored.assignee == "duty-analyst"


def test_an_incident_moves_through_its_lifecycle_with_its_evidence(
    console: Console, login: Login
) -> None:
    page = login("hanoi-it")  # provincial IT may move its own incidents
    page.goto(f"/incidents/{console.data.anomaly_incident}")
    expect(page.locator("#incident-status")).to_have_text("new")
    expect(page.locator("#chart polyline.observed")).to_have_count(1)
    expect(page.locator("#chart polygon.band")).to_have_count(1)
    expect(page.locator("#evidence tbody tr")).to_have_count(6)
    page.select_option("#transition-form select[name=to]", "acknowledged")
    page.fill("#transition-form input[name=reason]", "looking at the VNeID gateway")
    page.click("#transition-form button")
    expect(page.locator("#incident-status")).to_have_text("acknowledged")
    page.fill("#comment-form textarea", "gateway restarted at 15:20")
    page.click("#comment-form button")
    expect(page.locator("#comments")).to_contain_text("gateway restarted at 15:20")
    expect(page.locator("#timeline")).to_contain_text("acknowledged")
    shot(page, "incident")
    stored = incidents.get(console.es, console.indices, console.data.anomaly_incident, user=None)
    assert stored.status.value == "acknowledged"
    assert stored.comments[-1].author == "hanoi-it"


def test_an_uploaded_rule_with_an_error_shows_the_error_in_place(
    console: Console, login: Login
) -> None:
    page = login("admin")
    page.goto("/rules")
    expect(page.locator("#rules tbody tr").first).to_be_visible()
    broken = "title: Broken rule\nid: 7f1b9d7e-0000-4000-8000-000000000001\nlogsource:\n"
    broken += "  product: soc\ndetection:\n  sel:\n    event.action: [login\n  condition: sel\n"
    page.fill("#upload-form input[name=file_name]", "broken-rule.yml")
    page.fill("#upload-form textarea", broken)
    page.click("#upload-form button[type=submit]")
    errors = page.locator("#upload-errors")
    expect(errors).to_be_visible()
    expect(errors).to_contain_text("broken-rule.yml:")
    expect(page.locator("#upload-form textarea")).to_have_value(broken)  # kept for fixing
    page.locator("#upload").scroll_into_view_if_needed()
    shot(page, "rules")
    assert console.settings.rules_dir is not None
    uploaded = console.settings.rules_dir / "uploaded"
    assert not (uploaded / "broken-rule.yml").exists()
    # Fixed, it validates against every other rule and is saved disabled, waiting for review.
    page.fill("#upload-form textarea", FIXED_RULE)
    page.click("#upload-form button[type=submit]")
    expect(page.locator(".flash.good")).to_contain_text("broken-rule.yml")
    row = page.locator("#rules tr[data-rule='7f1b9d7e-0000-4000-8000-000000000001']")
    expect(row.locator("td.enabled")).to_have_text("Disabled")
    assert (uploaded / "broken-rule.yml").read_text(encoding="utf-8") == FIXED_RULE
    row.locator("button", has_text="Enable").click()
    expect(row.locator("td.enabled")).to_have_text("Enabled")
    row.locator("details.exception summary").click()
    row.locator("input[name=field]").fill("source.ip")
    row.locator("input[name=value]").fill("203.0.113.10")
    row.locator("input[name=reason]").fill("the ministry's own load test")
    row.locator(".exception-form button[value=save]").click()
    expect(row).to_contain_text("source.ip = 203.0.113.10 (the ministry's own load test, admin)")
    row.locator("button", has_text="Backtest").click()
    expect(page.locator("#backtest")).to_contain_text("7f1b9d7e-0000-4000-8000-000000000001")
    token = page.locator("#upload-form input[name=csrf_token]").input_value()
    missing = page.request.post(
        f"{console.url}/rules/no-such-rule/enable", form={"csrf_token": token}, max_redirects=0
    )
    assert missing.status == 404


def test_a_sigmahq_file_uploads_through_the_page_under_its_own_name(
    console: Console, login: Login
) -> None:
    name = "web_etc_passwd_keyword.yml"
    text = (Path(__file__).resolve().parents[1] / "fixtures" / "sigmahq" / name).read_text()
    page = login("admin")
    page.goto("/rules")
    page.fill("#upload-form input[name=file_name]", name)
    page.fill("#upload-form textarea", text)
    page.click("#upload-form button[type=submit]")
    expect(page.locator(".flash.good")).to_contain_text(name)
    row = page.locator("#rules tr[data-rule='9c7a3e51-6b0d-4e8f-8a2c-0d4e5f6a7b81']")
    expect(row.locator("td.enabled")).to_have_text("Disabled")
    expect(row).to_contain_text(f"uploaded/{name}")
    assert console.settings.rules_dir is not None
    uploaded = console.settings.rules_dir / "uploaded" / name
    assert uploaded.read_text(encoding="utf-8") == text
    row.locator("button", has_text="Backtest").click()
    expect(page.locator("#matched-events")).to_have_text("0")


def test_planted_script_in_events_and_alerts_is_shown_as_text(
    console: Console, login: Login
) -> None:
    # The Content Security Policy is switched off here, so escaping alone must keep script inert.
    page = login("analyst", bypass_csp=True)
    page.goto(f"/incidents/{console.data.xss_incident}")
    expect(page.locator("#raw-events tbody tr")).to_have_count(3)
    expect(page.locator("#raw-events")).to_contain_text(SCRIPT)
    expect(page.locator("#raw-events")).to_contain_text(IMG)
    expect(page.locator("#incident-title")).to_contain_text(SCRIPT)
    expect(page.locator("#evidence")).to_contain_text(IMG)
    expect(page.locator("#emails")).to_contain_text(f"[soc] critical: {SCRIPT}")
    page.locator("#raw-events").scroll_into_view_if_needed()
    shot(page, "raw-events-as-text")
    assert page.locator("img[src=x]").count() == 0
    assert not xss_fired(page)
    page.goto("/alerts")
    expect(page.locator("#queue")).to_contain_text(SCRIPT)
    shot(page, "alert-queue")
    expect(page.locator("#live")).to_be_visible()  # the rows were redrawn from the JSON feed
    expect(page.locator("#queue .title", has_text=SCRIPT)).to_have_count(1)
    assert page.locator("img[src=x], #queue script").count() == 0
    assert not xss_fired(page)


def test_forms_without_the_csrf_token_are_refused(console: Console, login: Login) -> None:
    page = login("analyst")
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["soc_session"]
    assert session["httpOnly"]
    assert session["sameSite"] == "Strict"
    target = f"{console.url}/incidents/{console.data.xss_incident}/comment"
    forms: list[dict[str, str | float | bool]] = [
        {"text": "no token", "etag": '"1-1"'},
        {"text": "wrong token", "etag": '"1-1"', "csrf_token": "forged"},
    ]
    for form in forms:
        refused = page.request.post(target, form=form, max_redirects=0)
        assert refused.status == 403, refused.text()
    refused = page.request.post(
        f"{console.url}/alerts/bulk", form={"ids": "x", "action": "acknowledge"}, max_redirects=0
    )
    assert refused.status == 403
    stored = incidents.get(console.es, console.indices, console.data.xss_incident, user=None)
    assert not stored.comments


def test_admin_pages_outbox_and_durations(console: Console, login: Login) -> None:
    page = login("admin")
    page.goto("/durations")
    expect(page.locator("#durations")).to_contain_text(HANOI)
    page.goto("/outbox")
    expect(page.locator("#outbox")).to_contain_text("it-hanoi@soc.test")
    expect(page.locator("#outbox")).to_contain_text(SCRIPT)
    shot(page, "outbox")
    page.goto("/outbox?status=failed")
    expect(page.locator("#outbox")).not_to_contain_text("it-hanoi@soc.test")
    page.goto("/lang/vi?next=/")
    expect(page.locator("h1")).to_have_text("Bảng trạng thái quốc gia")
    old_session = next(c for c in page.context.cookies() if c["name"] == "soc_session")
    page.click("form[action='/logout'] button")
    expect(page).to_have_url(re.compile(r"/login$"))
    # The old cookie is dead on the server too, not just dropped by the browser.
    old = old_session  # a Cookie as read back; add_cookies takes a SetCookieParam
    page.context.add_cookies(
        [{"name": old["name"], "value": old["value"], "domain": old["domain"], "path": old["path"]}]
    )
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
