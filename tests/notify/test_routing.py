"""Routes: who receives which notice, and errors that name the file and the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from soc.alerts.models import Severity
from soc.errors import RouteError
from soc.notify.models import NoticeEvent
from soc.notify.routing import Routes, load_routes, parse_routes, validate_only_own_provinces
from tests.notify.notices import notice

NATIONAL = "national-soc@soc.local"


def addresses(routes: Routes, **kwargs: Any) -> list[str]:
    """Who gets ``notice("inc-1", **kwargs)`` (the keywords are notice()'s, typed there)."""
    return [r.address for r in routes.recipients(notice("inc-1", **kwargs))]


def test_a_province_notice_goes_to_that_provinces_team_only(routes: Routes) -> None:
    assert addresses(routes, province="04") == ["it@caobang.gov.vn"]
    assert addresses(routes, province="12") == ["it@laichau.gov.vn"]


def test_below_the_routes_minimum_severity_nobody_is_mailed(routes: Routes) -> None:
    assert addresses(routes, province="12", severity=Severity.MEDIUM) == []
    assert addresses(routes, province="04", severity=Severity.LOW) == []


def test_a_province_without_route_goes_to_the_national_soc(routes: Routes) -> None:
    assert addresses(routes, province="01") == [NATIONAL]


def test_escalation_goes_to_the_province_lead_then_the_national_soc(routes: Routes) -> None:
    esc = NoticeEvent.ESCALATION
    assert addresses(routes, province="04", event=esc, level=1) == ["lead@caobang.gov.vn"]
    assert addresses(routes, province="04", event=esc, level=2) == [NATIONAL]
    # Lai Châu has no lead: its first escalation already reaches the national SOC.
    assert addresses(routes, province="12", event=esc, level=1) == [NATIONAL]


def test_ward_and_service_routes_narrow_what_a_contact_receives() -> None:
    routes = parse_routes(
        """
routes:
  - province: "04"
    ward: "01273"
    service: otp-gateway
    min_severity: low
    contacts: [otp@thucphan.gov.vn]
""",
        NATIONAL,
    )
    # A high notice: the national SOC gets its copy (national_copy defaults to high).
    assert addresses(routes, province="04", service="otp-gateway") == [
        "otp@thucphan.gov.vn",
        NATIONAL,
    ]
    medium = addresses(routes, province="04", service="otp-gateway", severity=Severity.MEDIUM)
    assert medium == ["otp@thucphan.gov.vn"]
    # No route covers Cao Bằng's VNeID incidents: they have no route, so the national SOC.
    assert addresses(routes, province="04", service="vneid") == [NATIONAL]


def test_the_national_soc_is_copied_on_high_and_critical_as_configured() -> None:
    text = "national_copy: {copy}\nroutes:\n  - province: '04'\n    min_severity: low\n" \
        "    contacts: [it@caobang.gov.vn]\n"  # fmt: skip
    default = parse_routes(text.replace("national_copy: {copy}\n", ""), NATIONAL)
    only_critical = parse_routes(text.format(copy="critical"), NATIONAL)
    never = parse_routes(text.format(copy="none"), NATIONAL)
    for level, by_default, critical_only in [
        (Severity.LOW, False, False), (Severity.MEDIUM, False, False),
        (Severity.HIGH, True, False), (Severity.CRITICAL, True, True),
    ]:  # fmt: skip
        assert (NATIONAL in addresses(default, province="04", severity=level)) is by_default
        assert (NATIONAL in addresses(only_critical, province="04", severity=level)) is (
            critical_only
        )
        assert addresses(never, province="04", severity=level) == ["it@caobang.gov.vn"]


def test_a_recipient_is_refused_notices_of_another_province(routes: Routes) -> None:
    with pytest.raises(RouteError, match=r"province 12 to it@caobang\.gov\.vn"):
        validate_only_own_provinces(routes, "it@caobang.gov.vn", [notice("x", province="12")])
    validate_only_own_provinces(routes, NATIONAL, [notice("x", province="12")])


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("routes:\n  - province: '04'\n    contacts: [not-an-address]\n", 2, "not a plain email"),
        ("routes:\n  - province: Atlantis\n    contacts: [a@b.vn]\n", 2, "Atlantis"),
        ("routes:\n  - province: '04'\n    contacts: [a@b.vn]\n    severity: high\n", 2,
         "severity"),
        ("routes:\n  - province: '04'\n    min_severity: urgent\n    contacts: [a@b.vn]\n", 2,
         "min_severity"),
        ("routes:\n  - province: '04'\n    contacts: []\n", 2, "contacts"),
        ("routes:\n  - province: '04'\n    contacts:\n      - address: a@b.vn\n"
         "        language: fr\n", 4, "language"),
        ("routes: [\n", 2, "not valid YAML"),
    ],
)  # fmt: skip
def test_a_bad_routes_file_is_refused_with_file_and_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(text, "utf-8")
    with pytest.raises(RouteError, match=message) as caught:
        load_routes(path, NATIONAL)
    assert caught.value.path == str(path)
    assert caught.value.line == line


def test_the_example_routes_file_is_valid() -> None:
    routes = load_routes(Path("config/routes.example.yaml"), NATIONAL)
    assert routes.routes
