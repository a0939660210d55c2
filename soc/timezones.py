"""How times are shown to people: one zone at a time, always labelled, the other one on demand.

Storage, the API and Elasticsearch speak UTC. People read Vietnam time (``Asia/Ho_Chi_Minh``,
UTC+7 all year, no daylight saving) unless they chose UTC in the console (a per-user preference
cookie). Every time shown carries its zone's label ("UTC+7" or "UTC"), and pages give the other
zone in a tooltip, so no page mixes an unlabelled local time with a UTC one. The console
(:mod:`dashboards.pages`), the emails (:mod:`soc.notify.render`) and alert texts written by the
detectors all format through here. This module must not know pages or templates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

from soc import timeutil

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
SECONDS = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Zone:
    """A zone people can choose: its code (cookie value), its tz and its short label."""

    code: str
    tz: tzinfo
    label: str
    iana: str

    def show(self, when: datetime, pattern: str = SECONDS) -> str:
        """``when`` in this zone with its label, e.g. ``2026-12-04 22:15:19 UTC+7``."""
        return f"{when.astimezone(self.tz).strftime(pattern)} {self.label}"


ZONES: dict[str, Zone] = {
    "vn": Zone("vn", VIETNAM, "UTC+7", "Asia/Ho_Chi_Minh"),
    "utc": Zone("utc", UTC, "UTC", "UTC"),
}
DEFAULT = ZONES["vn"]


def pick(code: str | None) -> Zone:
    """The zone of a preference value; Vietnam time for anything unknown."""
    return ZONES.get(code or "", DEFAULT)


def other(zone: Zone) -> Zone:
    """The zone shown in the tooltip: UTC for Vietnam time and the other way round."""
    return ZONES["utc"] if zone.code == "vn" else DEFAULT


def parse(value: datetime | str | None) -> datetime | None:
    """A stored time (aware datetime or ISO 8601 text, ``Z`` allowed); naive ones are UTC."""
    if value is None or value == "":
        return None
    when = timeutil.parse(value) if isinstance(value, str) else value
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def vietnam(when: datetime, pattern: str = SECONDS) -> str:
    """Vietnam time, labelled: for texts written once for everyone (emails, alert summaries)."""
    return DEFAULT.show(when, pattern)
