"""Normal traffic has the shape of real life: big cities busier than mountain provinces, urban
wards busier than rural communes, days busier than nights, weekdays busier than Sundays, a
background of ordinary errors, and the same seed always gives the same traffic."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

from soc.simulate.formats import to_line
from soc.simulate.models import AppRecord
from soc.simulate.profile import HOLIDAY, TET, day_factor
from soc.simulate.service import Plan, records

MONDAY = datetime(2026, 11, 23, tzinfo=UTC) - timedelta(hours=7)  # Monday 00:00 in Viet Nam


def count(plan: Plan, local_hour: int, day: int = 0) -> int:
    start = MONDAY + timedelta(days=day, hours=local_hour)
    return sum(1 for _ in records(plan, start, start + timedelta(hours=1)))


def test_cities_are_far_busier_than_mountain_provinces() -> None:
    hanoi, lai_chau = count(Plan(provinces=("01",)), 10), count(Plan(provinces=("12",)), 10)
    assert hanoi > 5 * lai_chau > 0


def test_urban_wards_are_busier_than_rural_communes() -> None:
    start = MONDAY + timedelta(hours=9)
    per_type: Counter[str] = Counter()
    wards: dict[str, set[str]] = {"phuong": set(), "xa": set()}
    for rec in records(Plan(provinces=("38",)), start, start + timedelta(hours=3)):
        ward = rec.where.ward
        if ward is not None and ward.division_type in wards:
            per_type[ward.division_type] += 1
            wards[ward.division_type].add(ward.code)
    per_phuong = per_type["phuong"] / len(wards["phuong"])
    per_xa = per_type["xa"] / len(wards["xa"])
    assert per_phuong > 2 * per_xa


def test_office_hours_are_busy_nights_quiet_and_lunch_dips() -> None:
    plan = Plan(provinces=("79",))
    morning, lunch, night = count(plan, 10), count(plan, 12), count(plan, 3)
    assert morning > 1.6 * lunch > 0
    assert lunch > 5 * night > 0


def test_weekdays_are_busier_than_weekends() -> None:
    plan = Plan(provinces=("48",))
    monday, saturday, sunday = count(plan, 10, 0), count(plan, 10, 5), count(plan, 10, 6)
    assert monday > 2 * saturday > 0
    assert saturday > sunday > 0


def test_holidays_are_as_quiet_as_a_sunday_and_tet_quieter() -> None:
    # The `holidays` package's calendar (the one the anomaly engine's season uses): 1 September
    # 2026 is National Day, 17 February Tết; 10:00 on Monday 24 August (a workday), Monday 31
    # August (a day off for National Day) and Tuesday 17 February.
    assert day_factor(date(2026, 9, 1)) == HOLIDAY
    assert day_factor(date(2026, 2, 17)) == TET
    assert day_factor(date(2026, 8, 25)) == 1.0
    plan = Plan(provinces=("48",))
    workday, holiday, tet = (count(plan, 10, day=d) for d in (-91, -84, -279))
    assert workday > 3 * holiday > 0
    assert holiday > tet > 0


def test_normal_traffic_has_a_background_of_ordinary_errors() -> None:
    start = MONDAY + timedelta(hours=9)
    found = list(records(Plan(provinces=("01",)), start, start + timedelta(hours=1)))
    statuses = Counter(getattr(r, "status", None) for r in found)
    codes = Counter(r.error_code for r in found if isinstance(r, AppRecord))
    failures = sum(1 for r in found if r.failed)
    assert statuses[404] > 0
    assert codes["OTP_INVALID"] > 0
    assert codes["VNEID-401"] > 0
    assert 0.005 < failures / len(found) < 0.08  # a few, not a storm


def test_the_same_seed_gives_the_same_traffic_and_another_seed_does_not() -> None:
    start, end = MONDAY + timedelta(hours=8), MONDAY + timedelta(hours=8, minutes=20)
    first = [to_line(r) for r in records(Plan(seed=5, provinces=("01", "04")), start, end)]
    again = [to_line(r) for r in records(Plan(seed=5, provinces=("01", "04")), start, end)]
    other = [to_line(r) for r in records(Plan(seed=6, provinces=("01", "04")), start, end)]
    assert first
    assert first == again
    assert first != other


def test_any_slice_equals_the_same_part_of_a_longer_run() -> None:
    # Live mode and restarts generate short slices; they must agree with a backfill.
    start = MONDAY + timedelta(hours=9)
    whole = [
        to_line(r) for r in records(Plan(provinces=("12",)), start, start + timedelta(hours=2))
    ]
    middle = start + timedelta(minutes=37)
    parts = [to_line(r) for r in records(Plan(provinces=("12",)), start, middle)] + [
        to_line(r) for r in records(Plan(provinces=("12",)), middle, start + timedelta(hours=2))
    ]
    assert whole == parts


def test_records_come_in_time_order() -> None:
    start = MONDAY + timedelta(hours=9)
    stamps = [r.at for r in records(Plan(provinces=("01",)), start, start + timedelta(hours=2))]
    assert stamps == sorted(stamps)
