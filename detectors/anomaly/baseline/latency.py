"""What "slow" means for one key: the rung of the latency ladder its training rarely passed.

Training counts each key's events at or above every rung of
:data:`~detectors.anomaly.features.LATENCY_RUNGS_MS`. A key's *slow rung* is the lowest rung
that at most :data:`SLOW_SHARE` of its events reached, the shares shrunk towards the service's
national shares (``PRIOR_WEIGHT`` pseudo-events, as the ratios are) so a commune with a handful
of timed events is not given an extreme band. The latency test then counts a bucket's events at
or above that rung, and at or above each higher rung, against the learnt shares: binomial tails,
like the failure ratios', which hold at holiday and night volumes where a 95th percentile over
ten events means little.
Pure computation: no Elasticsearch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from detectors.anomaly.features import LATENCY_RUNGS_MS, Features, Level

#: A key's slow rung: the lowest rung at most this share of its training events reached.
SLOW_SHARE = 0.01


def national(rows: Iterable[Features]) -> dict[str, tuple[float, ...]]:
    """Per service, the share of its province-level events at or above each rung."""
    sums: dict[str, list[int]] = defaultdict(lambda: [0] * len(LATENCY_RUNGS_MS))
    for row in rows:
        if row.key.level is Level.PROVINCE and row.slower:
            total = sums[row.key.service]
            for i, n in enumerate(row.slower):
                total[i] += n
    return {
        service: tuple(n / counts[0] for n in counts)
        for service, counts in sums.items()
        if counts[0] > 0
    }


def slow_rung(
    slower: tuple[int, ...], prior: tuple[float, ...] | None, weight: float
) -> tuple[float, tuple[float, ...]] | None:
    """``(slow rung in ms, shrunk shares of events at or above it and each rung above)`` for one
    key's training counts, or ``None`` when nothing is known of its latency."""
    timed = slower[0] if slower else 0
    if timed == 0 and prior is None:
        return None
    pseudo = weight if prior is not None else 0.0
    shares = [
        ((slower[i] if slower else 0) + pseudo * (prior[i] if prior else 0.0)) / (timed + pseudo)
        for i in range(len(LATENCY_RUNGS_MS))
    ]
    for i in range(1, len(LATENCY_RUNGS_MS)):
        if shares[i] <= SLOW_SHARE:
            return LATENCY_RUNGS_MS[i], tuple(shares[i:])
    return None


def rung_index(ms: float) -> int:
    """The position of a rung of the ladder (a persisted model's rung must be one of them)."""
    return LATENCY_RUNGS_MS.index(ms)
