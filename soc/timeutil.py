"""Timestamps as Elasticsearch stores them: the one parser and the one formatter.

soc stores UTC ISO 8601 with milliseconds and a ``Z`` (``2026-11-23T03:00:00.007Z``); documents
written by others may carry an offset or no zone at all. :func:`parse` reads any of them (Python
3.11's ``datetime.fromisoformat`` accepts ``Z``) and treats a time without a zone as UTC;
:func:`iso` writes soc's form. :class:`Window` is the one half-open UTC time range: what a
detector run covers and what an alert records. Times shown to people go through
:mod:`soc.timezones` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson


def parse(text: str) -> datetime:
    """An aware datetime from ISO 8601 text (``Z`` or an offset; none means UTC).

    Raises ``ValueError`` for text that is not ISO 8601.
    """
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def parse_optional(text: str | None) -> datetime | None:
    """:func:`parse`, with None and ``""`` giving None."""
    return parse(text) if text else None


def iso(when: datetime) -> str:
    """UTC ISO 8601 with milliseconds and a ``Z``: the form soc stores.

    orjson formats in C (this runs once per event in the collector): its text is cut to
    milliseconds, or given ``.000`` when the time has no fraction.
    """
    text = orjson.dumps(when.astimezone(UTC), option=orjson.OPT_UTC_Z)
    # b'"YYYY-MM-DDTHH:MM:SS.ffffffZ"', or without the fraction when it is zero
    return (text[1:24] + b"Z" if len(text) > 22 else text[1:20] + b".000Z").decode()


@dataclass(frozen=True, slots=True)
class Window:
    """A half-open time range ``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware (UTC)")
        if self.end <= self.start:
            raise ValueError(f"window end {self.end} is not after its start {self.start}")

    @property
    def span(self) -> timedelta:
        return self.end - self.start

    def for_alert(self) -> Window:
        """The window an alert records: this one (kept while callers still ask for it)."""
        return self

    def iso(self) -> tuple[str, str]:
        return iso(self.start), iso(self.end)
