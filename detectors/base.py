"""Value objects every detector shares: the time window a run covers, and window arithmetic.

Windows are aligned on multiples of the rule's interval since the Unix epoch, so an uninterrupted
run and a run that catches up after downtime cut time into exactly the same windows, and the
deterministic alert id (``soc.alerts.models.alert_id``) of a finding is the same in both. This
module must not talk to Elasticsearch.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from soc.timeutil import Window as Window  # the detectors' modules import both from here
from soc.timeutil import iso as iso

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
