"""The demo's routes: every province's IT gets its own incidents; Hà Nội's go to hanoi-it."""

from __future__ import annotations

from pathlib import Path

from soc.alerts.models import Severity
from soc.notify.demo_routes import DEMO_ROUTES_FILE, demo_routes_yaml, slug
from soc.notify.routing import load_routes
from tests.notify.notices import notice

NATIONAL = "national-soc@soc.local"


def test_the_committed_demo_routes_are_the_generated_ones() -> None:
    assert Path(DEMO_ROUTES_FILE).read_text("utf-8") == demo_routes_yaml(NATIONAL), (
        "regenerate with: .venv/bin/soc notify routes demo > config/demo-routes.yaml"
    )


def test_each_province_has_its_it_team_and_hanoi_it_gets_hanoi() -> None:
    routes = load_routes(Path(DEMO_ROUTES_FILE), NATIONAL)
    assert len({r.province_code for r in routes.routes}) == 34
    hanoi = [c.address for c in routes.recipients(notice("hn", "01", severity=Severity.MEDIUM))]
    assert hanoi == ["hanoi-it@soc.local"]
    high = [c.address for c in routes.recipients(notice("hn", "01", severity=Severity.HIGH))]
    assert high == ["hanoi-it@soc.local", NATIONAL]
    caobang = [c.address for c in routes.recipients(notice("cb", "04", severity=Severity.MEDIUM))]
    assert caobang == ["it.cao-bang@soc.local"]
    assert routes.recipients(notice("cb", "04", severity=Severity.LOW)) == []


def test_slugs_are_plain_ascii() -> None:
    assert slug("Thành phố Hà Nội") == "thanh-pho-ha-noi"
    assert slug("Đắk Lắk") == "dak-lak"
