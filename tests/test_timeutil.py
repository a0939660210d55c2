"""soc.timeutil: the one parser and formatter of stored timestamps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from soc import timeutil


def test_iso_is_utc_milliseconds_and_z() -> None:
    hanoi = timezone(timedelta(hours=7))
    assert timeutil.iso(datetime(2026, 11, 23, 10, 0, 0, 7999, hanoi)) == "2026-11-23T03:00:00.007Z"
    assert timeutil.iso(datetime(2026, 11, 23, 3, tzinfo=UTC)) == "2026-11-23T03:00:00.000Z"


def test_parse_reads_z_offsets_and_zoneless_as_utc() -> None:
    want = datetime(2026, 11, 23, 3, tzinfo=UTC)
    assert timeutil.parse("2026-11-23T03:00:00.000Z") == want
    assert timeutil.parse("2026-11-23T10:00:00+07:00") == want
    assert timeutil.parse("2026-11-23T03:00:00").tzinfo is UTC
    assert timeutil.parse(timeutil.iso(want)) == want
    assert timeutil.parse_optional("") is None
    with pytest.raises(ValueError, match="Invalid isoformat"):
        timeutil.parse("yesterday")
