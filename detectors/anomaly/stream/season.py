"""The seasonal slot of a time: hour of day (local time) on a working day or on a rest day.

Rest days are Saturdays, Sundays and the public holidays of a calendar (for soc: Vietnam's, from
the ``holidays`` package, which knows the lunar Tết and Hùng Kings dates), so Tết is judged against
rest-day traffic, not against a working Tuesday. 48 slots cover the daily cycle and the weekly
one (working days against the weekend) with enough observations per slot to learn from a week.

Must not hold per-series state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

import holidays
import numpy as np
from numpy.typing import NDArray

SLOTS = 48


@lru_cache(maxsize=8)
def _holiday_set(country: str) -> Callable[[date], bool]:
    table = holidays.country_holidays(country)
    return lambda day: day in table


@dataclass(frozen=True, slots=True)
class Calendar:
    """Local time (a fixed UTC offset) and the rest days of one country (or none).

    The offset must be whole hours' worth of slots (Vietnam: +7 h); answers are memoised per hour.
    """

    utc_offset_minutes: int = 0
    country: str | None = None
    _cache: dict[date, bool] = field(default_factory=dict, compare=False, repr=False)
    _slots: dict[int, int] = field(default_factory=dict, compare=False, repr=False)

    def local(self, epoch: float) -> datetime:
        return datetime.fromtimestamp(epoch, tz=UTC) + timedelta(minutes=self.utc_offset_minutes)

    def rest_day(self, day: date) -> bool:
        known = self._cache.get(day)
        if known is None:
            known = day.weekday() >= 5 or (
                self.country is not None and _holiday_set(self.country)(day)
            )
            self._cache[day] = known
        return known

    def slot(self, epoch: float) -> int:
        """0-23: the hour of a working day; 24-47: the hour of a rest day."""
        hour = int(epoch // 3600.0)
        known = self._slots.get(hour)
        if known is None:
            when = self.local(hour * 3600.0)
            known = when.hour + (24 if self.rest_day(when.date()) else 0)
            self._slots[hour] = known
        return known

    def slots(self, epochs: NDArray[np.float64]) -> NDArray[np.int64]:
        """:meth:`slot` of each time (one look-up per distinct hour)."""
        hours, where = np.unique(np.floor_divide(epochs, 3600.0), return_inverse=True)
        table = np.array([self.slot(float(h) * 3600.0) for h in hours], np.int64)
        out: NDArray[np.int64] = table[where.reshape(np.shape(epochs))]
        return out


PLAIN = Calendar()
"""UTC, weekends only: for series from elsewhere (``score-csv``, NAB)."""
VIETNAM = Calendar(utc_offset_minutes=7 * 60, country="VN")
"""Asia/Ho_Chi_Minh (UTC+7, no daylight saving) and Vietnam's public holidays."""
