"""Value objects every detector shares: the time window a run covers, and window arithmetic.

Windows are aligned on multiples of the rule's interval since the Unix epoch, so an uninterrupted
run and a run that catches up after downtime cut time into exactly the same windows, and the
deterministic alert id (``soc.alerts.models.alert_id``) of a finding is the same in both. This
module must not talk to Elasticsearch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from soc.alerts.models import Window as AlertWindow
from soc.timeutil import iso as iso  # the detectors' modules import it from here

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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

    def for_alert(self) -> AlertWindow:
        return AlertWindow(start=self.start, end=self.end)

    def iso(self) -> tuple[str, str]:
        return iso(self.start), iso(self.end)


def floor(when: datetime, step: timedelta) -> datetime:
    """The latest multiple of ``step`` since the epoch at or before ``when``."""
    seconds = step.total_seconds()
    elapsed = (when - _EPOCH).total_seconds()
    return _EPOCH + timedelta(seconds=(elapsed // seconds) * seconds)


def aligned_windows(since: datetime, until: datetime, step: timedelta) -> Iterator[Window]:
    """The complete step-aligned windows from ``since`` (aligned down) that end by ``until``."""
    start = floor(since, step)
    while start + step <= until:
        yield Window(start, start + step)
        start += step


def parse_duration(text: str) -> timedelta:
    """``30s``, ``5m``, ``1h``, ``7d`` as a timedelta (Sigma's timespan units)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip()
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or int(text[:-1]) == 0:
        raise ValueError(f"invalid duration {text!r}: expected a positive number and s, m, h or d")
    return timedelta(seconds=int(text[:-1]) * units[text[-1]])
