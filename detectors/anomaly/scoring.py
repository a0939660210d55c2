"""Judge one bucket of one key against its baseline: is its latency far above the usual.

The 15-minute model keeps only latency (slowdowns): event volumes and failure counts are judged
by the live streaming detector (:mod:`detectors.anomaly.live`, 5-minute buckets). The test is a
band from the period's percentiles *and* a minimum count of events (``anomaly_min_events``), so
a few slow requests in a quiet hour are not a slowdown. Silence (no events at all) is
:mod:`detectors.anomaly.silence`'s business. No I/O here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from detectors.anomaly.baseline.model import Baseline
from detectors.anomaly.features import Features
from soc.alerts.anomaly import AnomalyKind

#: Latency: a bucket's 95th percentile must exceed the usual one this many times (and the usual
#: 99th percentile) to be a slowdown.
SLOW_FACTOR = 4.0


@dataclass(frozen=True, slots=True)
class Deviation:
    """One feature of one bucket outside its band."""

    feature: str
    kind: AnomalyKind
    label: str
    observed: float
    expected: float
    low: float
    high: float
    p_value: float
    unit: str = ""
    events: int = 0

    @property
    def surprise(self) -> float:
        """``-log10`` of the tail probability: how many orders of magnitude it is unlikely."""
        return -math.log10(max(self.p_value, 1e-300))


def latency(row: Features, base: Baseline, alpha: float, min_events: int) -> Deviation | None:
    """The bucket's 95th percentile latency above the band: the period's 99th percentile, and
    at least :data:`SLOW_FACTOR` times its 95th. Beyond the band the surprise grows with the
    overshoot (``alpha ** (observed / band)``)."""
    if row.p95_ms is None or row.count < min_events or not base.p95_ms:
        return None
    high = max(SLOW_FACTOR * base.p95_ms, base.p99_ms or 0.0)
    if row.p95_ms <= high:
        return None
    p = alpha ** (row.p95_ms / high)
    return Deviation(
        "p95_ms",
        AnomalyKind.SLOWDOWN,
        "95th percentile latency",
        row.p95_ms,
        base.p95_ms,
        0.0,
        high,
        p,
        "ms",
        row.count,
    )


def primary(deviations: list[Deviation]) -> Deviation:
    """The deviation that names the alert: the most surprising."""
    return max(deviations, key=lambda d: d.surprise)


def judge(row: Features, base: Baseline, *, alpha: float, min_events: int) -> list[Deviation]:
    """Every deviating feature of ``row``: its latency (volumes and failure counts are the live
    streaming detector's, :mod:`detectors.anomaly.live`)."""
    found = latency(row, base, alpha, min_events)
    return [] if found is None else [found]


def score(deviations: list[Deviation], alpha: float) -> float:
    """Map the strongest surprise to [0, 1]: 0.5 at the alerting threshold, towards 1 beyond."""
    if not deviations:
        return 0.0
    threshold = -math.log10(alpha)
    strongest = max(d.surprise for d in deviations)
    return round(strongest / (strongest + threshold), 4)
