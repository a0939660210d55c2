"""How busy each locality and service is, and when: the shape of normal traffic.

Volume scales with locality size: an urban ward (phường) weighs more than a rural commune (xã),
and the six centrally-run cities get a further factor, so Hà Nội and Hồ Chí Minh City are far
busier than Lai Châu or Cao Bằng. Time follows Asia/Ho_Chi_Minh office life: busy mornings and
afternoons, a lunch dip, quiet nights, light Saturdays and quieter Sundays; Vietnam's public
holidays (the ``holidays`` package, the calendar the anomaly engine's season uses) are as quiet
as a Sunday, Tết quieter still. This module is pure data and arithmetic; it must not draw random
numbers or build records (``traffic`` does).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

import holidays

from soc.localities import Catalogue, Province, Ward
from soc.services import Service

LOCAL = timezone(timedelta(hours=7), "ICT")

WARD_WEIGHT = {"phuong": 3.0, "xa": 1.0, "dac_khu": 0.7}
CITY_FACTOR = 1.5  # centrally-run cities: more people online per ward

# Share of the peak rate in each local hour of a working day (0..23). Why these: citizens file
# from 7:30, the one-stop shops open 7:30-11:30 and 13:30-17:00, people browse in the evening.
HOURLY = (
    0.04, 0.03, 0.02, 0.02, 0.03, 0.06, 0.15, 0.45, 0.95, 1.0, 1.0, 0.85,
    0.4, 0.55, 0.95, 1.0, 0.9, 0.6, 0.35, 0.35, 0.3, 0.22, 0.12, 0.07,
)  # fmt: skip
WEEKDAY = (1.0, 1.0, 1.0, 1.0, 0.95, 0.35, 0.2)  # Monday .. Sunday
#: A public holiday is as quiet as a Sunday; the Lunar New Year (Tết) days quieter still.
HOLIDAY = 0.2
TET = 0.1

# Peak-hour rate of "units" (a page view, a login flow, a dossier step ...) per unit of locality
# weight, per service. A login flow logs three lines, an OTP exchange two or three.
PEAK_RATE: dict[Service, float] = {
    Service.WEB_PORTAL: 1.2,
    Service.NATIONAL_PORTAL: 0.5,
    Service.ONE_STOP_SHOP: 1.0,
    Service.VNEID: 0.35,
    Service.OTP: 0.3,
    Service.NATIONAL_DB: 0.4,
    Service.PAYMENT: 0.1,
}
# Synchronisation to the national portal has no rate of its own: it pushes what the one-stop
# shop changed (``traffic.synced``). No service has a rhythm floor today.
RHYTHM_FLOOR: dict[Service, float] = {}


def ward_weight(ward: Ward, province: Province) -> float:
    city = CITY_FACTOR if province.division_type == "thanh_pho_trung_uong" else 1.0
    return WARD_WEIGHT.get(ward.division_type, 1.0) * city


@lru_cache(maxsize=64)
def province_wards(cat: Catalogue, code: str) -> tuple[tuple[Ward, ...], tuple[float, ...]]:
    """The wards of a province and their cumulative weights (for weighted picks)."""
    province = cat.province(code)
    wards = tuple(cat.wards_of(province))
    total = 0.0
    cumulative = []
    for ward in wards:
        total += ward_weight(ward, province)
        cumulative.append(total)
    return wards, tuple(cumulative)


def province_weight(cat: Catalogue, code: str) -> float:
    return province_wards(cat, code)[1][-1]


@lru_cache(maxsize=1)
def _vietnam() -> holidays.HolidayBase:
    return holidays.country_holidays("VN", language="en_US")


@lru_cache(maxsize=4096)
def day_factor(day: date) -> float:
    """Share of a working day's traffic on ``day`` (a local date)."""
    name = _vietnam().get(day)
    if name is None:
        return WEEKDAY[day.weekday()]
    return TET if "Lunar New Year" in name else min(HOLIDAY, WEEKDAY[day.weekday()])


def rhythm(service: Service, when: datetime) -> float:
    """Share of the peak rate at ``when`` (an aware datetime), in local time."""
    local = when.astimezone(LOCAL)
    value = HOURLY[local.hour] * day_factor(local.date())
    return max(value, RHYTHM_FLOOR.get(service, 0.0))


def expected_units(
    cat: Catalogue, code: str, service: Service, hour: datetime, scale: float
) -> float:
    """Mean number of units a province produces for ``service`` in the hour starting at ``hour``
    (none for ``portal-sync``, which follows the one-stop shop's dossiers)."""
    return PEAK_RATE.get(service, 0.0) * province_weight(cat, code) * rhythm(service, hour) * scale


def host_name(service: Service, province: Province) -> str:
    return f"{service.value}-{province.codename.replace('_', '-')}-01"
