"""Vietnam's public holidays are part of the season: a holiday is judged like a Sunday.

Pure unit tests of the live baseline's hour-of-week slot (``baseline/model.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from detectors.anomaly.baseline.model import hour_of_week

SUNDAY = datetime(2026, 2, 22, tzinfo=UTC)


@pytest.mark.parametrize(
    "holiday",
    [
        datetime(2026, 2, 17, tzinfo=UTC),  # Tết (lunar new year), a Tuesday
        datetime(2026, 4, 30, tzinfo=UTC),  # Reunification Day, a Thursday
        datetime(2026, 9, 2, tzinfo=UTC),  # National Day, a Wednesday
    ],
)
def test_every_local_hour_of_a_holiday_takes_the_sunday_slot(holiday: datetime) -> None:
    sunday = SUNDAY + timedelta(days=7 * ((holiday - SUNDAY).days // 7))
    for hour in range(24):  # local hours: UTC+7, so the local day starts at 17:00 UTC
        at = holiday - timedelta(hours=7) + timedelta(hours=hour)
        same_on_sunday = sunday - timedelta(hours=7) + timedelta(hours=hour)
        assert hour_of_week(at) == hour_of_week(same_on_sunday)


def test_a_working_day_keeps_its_own_slot() -> None:
    tuesday = datetime(2026, 2, 24, 3, tzinfo=UTC)  # 10:00 in Hà Nội, a week after Tết
    assert hour_of_week(tuesday) == 24 + 3
