"""Evidence by kind on the incident page: a probe's endpoint, check, answers and since when; a
rule's matched events with the fields it matched; a summary that follows the incident as alerts
join."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from playwright.sync_api import expect

from soc import timezones
from soc.alerts import service as alerts
from soc.events.service import event_id, index_events
from soc.incidents.grouping import group_pending
from soc.incidents.models import utcnow
from soc.localities import catalogue
from tests.dashboards.conftest import Console, Login, shot
from tests.incidents.factory import T0, make_alert, wards, write

URL = "https://dichvucong.khanhhoa.gov.vn/health"


def _locality(province: str, ward: str) -> dict[str, Any]:
    p = catalogue().province(province)
    w = catalogue().ward(ward, p)
    return {"province": {"code": p.code, "name": p.name}, "ward": {"code": w.code, "name": w.name}}


def _probe(province: str, ward: str, minutes_ago: int, up: bool) -> dict[str, Any]:
    at = utcnow() - timedelta(minutes=minutes_ago)
    doc: dict[str, Any] = {
        "@timestamp": at.isoformat(),
        "event": {
            "kind": "metric",
            "dataset": "probe.http",
            "outcome": "success" if up else "failure",
        },
        "service": {"name": "web-portal"},
        "url": {"full": URL},
        "soc": {"probe": {"target": "kh-portal", "up": up, "latency_ms": 42.0 if up else 5000.0}},
        "locality": _locality(province, ward),
        "http": {"response": {"status_code": 200 if up else 503}},
    }
    if not up:
        doc["error"] = {"message": "503 Service Unavailable"}
    return doc


def test_a_probe_incident_shows_endpoint_answers_and_since_when(
    console: Console, login: Login
) -> None:
    ward = wards("56", 1)[0]
    results = [_probe("56", ward, m, up=m > 7) for m in (10, 8, 6, 4, 2)]
    index_events(console.es, console.indices, results, refresh=True)
    alert = make_alert(
        province="56",
        ward=ward,
        rule="probe_service_down",
        service="web-portal",
        title="Health probe reports a service down",
    )
    write(console.es, console.indices, alert)
    group_pending(console.es, console.indices, console.settings)
    incident = alerts.get(console.es, console.indices, alert.id, user=None).incident_id
    page = login("analyst", lang="vi")
    page.goto(f"/incidents/{incident}")
    box = page.locator("#probe-evidence")
    expect(box).to_contain_text(URL)
    expect(box).to_contain_text("kh-portal")
    rows = page.locator("#probe-checks tbody tr")
    expect(rows).to_have_count(5)
    expect(rows.first).to_contain_text("lỗi")
    expect(rows.first).to_contain_text("HTTP 503")
    expect(rows.last).to_contain_text("đạt")
    since = timezones.parse(results[2]["@timestamp"])
    assert since is not None
    expect(page.locator("#probe-down-since time")).to_have_attribute(
        "datetime", since.strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    shot(page, "incident-probe")


def test_a_rule_incident_shows_matched_fields_and_the_summary_follows(
    console: Console, login: Login
) -> None:
    ward = wards("42", 1)[0]
    events = [
        {
            "@timestamp": (utcnow() - timedelta(minutes=3, seconds=i)).isoformat(),
            "event": {"kind": "event", "action": "db-lookup", "outcome": "failure"},
            "service": {"name": "national-db"},
            "locality": _locality("42", ward),
            "url": {"original": "/lookup?id=<b>x</b>"},
        }
        for i in range(3)
    ]
    index_events(console.es, console.indices, events, refresh=True)
    rule_file = f"{console.settings.rules_dir}/database/lookup-failure.yml:1"
    first = make_alert(
        province="42",
        ward=ward,
        rule="national_db_lookup_failure",
        service="national-db",
        title="National database look-up failure",
    )
    first = first.model_copy(
        update={
            "explanation": {"rule_file": rule_file},
            "summary": "3 matching events (first window)",
            "event_ids": tuple(event_id(e) for e in events),
            "created": utcnow() - timedelta(minutes=3),
        }
    )
    write(console.es, console.indices, first)
    group_pending(console.es, console.indices, console.settings)
    incident = alerts.get(console.es, console.indices, first.id, user=None).incident_id
    later = make_alert(
        province="42",
        ward=ward,
        rule="national_db_lookup_failure",
        minute=5,
        service="national-db",
        title="National database look-up failure",
    )
    later = later.model_copy(
        update={
            "explanation": {"rule_file": rule_file},
            "summary": "9 matching events (later window)",
            "created": utcnow() - timedelta(minutes=1),
        }
    )
    write(console.es, console.indices, later)
    group_pending(console.es, console.indices, console.settings)
    assert alerts.get(console.es, console.indices, later.id, user=None).incident_id == incident

    page = login("analyst", lang="en")
    page.goto(f"/incidents/{incident}")
    expect(page.locator("#incident-summary")).to_have_text("9 matching events (later window)")
    expect(page.locator("#summary-count")).to_contain_text("2")
    cells = page.locator("#raw-events td.matched")
    expect(cells).to_have_count(3)
    expect(cells.first).to_contain_text("event.action = db-lookup")
    expect(cells.first).to_contain_text("event.outcome = failure")
    expect(page.locator("#probe-evidence")).to_have_count(0)
    # Log content stays text.
    expect(page.locator("#raw-events")).to_contain_text("/lookup?id=<b>x</b>")


def test_an_anomaly_incident_shows_its_series_band_and_anomalous_points(
    console: Console, login: Login
) -> None:
    ward = wards("01", 3)[1]  # the seeded anomaly incident's commune
    base = T0 - timedelta(hours=3)

    def traffic(day: int, n_per_bucket: int, buckets: range) -> list[dict[str, Any]]:
        return [
            {
                "@timestamp": (
                    base - timedelta(days=day) + timedelta(minutes=5 * b, seconds=7 * k)
                ).isoformat(),
                "event": {"kind": "event", "action": "login", "outcome": "success"},
                "service": {"name": "vneid"},
                "locality": _locality("01", ward),
                "user": {"name": f"u{day}-{b}-{k}"},
            }
            for b in buckets
            for k in range(n_per_bucket)
        ]

    history = [e for day in range(1, 8) for e in traffic(day, 2 + day % 3, range(60))]
    today = traffic(0, 4, range(36)) + traffic(0, 1, range(36, 60))  # drops at T0
    index_events(console.es, console.indices, history + today, refresh=True)
    page = login("analyst", lang="vi")
    page.goto(f"/incidents/{console.data.anomaly_incident}")
    chart = page.locator("#series-chart")
    expect(chart).to_be_visible()
    expect(page.locator("#series h2")).to_contain_text("sự kiện / 5 phút")
    observed = chart.locator("polyline.observed").get_attribute("points") or ""
    assert len(observed.split()) >= 48  # 3 h before to 1 h after: a useful window, not one dot
    band = chart.locator("polygon.band").get_attribute("points") or ""
    assert len(band.split()) == 2 * len(observed.split())
    expect(chart.locator("circle.anomalous")).to_have_count(6)  # the six anomalous buckets
    expect(page.locator("#series .legend")).to_contain_text("7 ngày trước")
    shot(page, "incident-anomaly")
