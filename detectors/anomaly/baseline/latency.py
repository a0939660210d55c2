"""What "slow" means for one key: the rung of the latency ladder its training rarely passed.

Training counts each key's events at or above every rung of
:data:`~detectors.anomaly.features.LATENCY_RUNGS_MS`. A key's *slow rung* is the lowest rung
that at most :data:`SLOW_SHARE` of its events reached, the shares shrunk towards the service's
national shares (``PRIOR_WEIGHT`` pseudo-events, as the ratios are) so a commune with a handful
of timed events is not given an extreme band. The latency test then counts a bucket's events at
or above that rung, and at or above each higher rung, against the learnt shares: binomial tails,
like the failure ratios', which hold at holiday and night volumes where a 95th percentile over
ten events means little.

A slow degradation (a latency ramp) moves the whole distribution before its tail: the median
request passes the usual 90th percentile long before many pass the usual 99th. So a key also
keeps its shrunk share at *every* rung (:func:`rung_shares`), and the test counts a bucket's
events at or above the rungs below the slow one that at most :data:`SHIFT_SHARE` of training
reached (about the usual 75th percentile and up): a rank test against the learnt quantiles.
Pure computation: no Elasticsearch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from detectors.anomaly.features import LATENCY_RUNGS_MS, Features, Level

#: A key's slow rung: the lowest rung at most this share of its training events reached.
SLOW_SHARE = 0.01
#: The lowest rung a shift is counted at: at most this share of the key's training events
#: reached it (a rung the median request passes is no evidence once it doubles its share).
SHIFT_SHARE = 0.25


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


def rung_shares(
    slower: tuple[int, ...], prior: tuple[float, ...] | None, weight: float
) -> tuple[float, ...]:
    """The shrunk share of one key's training events at or above every rung (empty when nothing
    is known of its latency)."""
    timed = slower[0] if slower else 0
    if timed == 0 and prior is None:
        return ()
    pseudo = weight if prior is not None else 0.0
    return tuple(
        ((slower[i] if slower else 0) + pseudo * (prior[i] if prior else 0.0)) / (timed + pseudo)
        for i in range(len(LATENCY_RUNGS_MS))
    )


def slow_rung(shares: tuple[float, ...]) -> tuple[float, tuple[float, ...]] | None:
    """``(slow rung in ms, shares of events at or above it and each rung above)`` from a key's
    :func:`rung_shares`, or ``None`` when nothing is known of its latency."""
    for i in range(1, len(shares)):
        if shares[i] <= SLOW_SHARE:
            return LATENCY_RUNGS_MS[i], tuple(shares[i:])
    return None


def rung_index(ms: float) -> int:
    """The position of a rung of the ladder (a persisted model's rung must be one of them)."""
    return LATENCY_RUNGS_MS.index(ms)


def shift_rungs(shares: tuple[float, ...], slow_ms: float | None) -> list[tuple[int, float]]:
    """``(rung index, learnt share)`` of the rungs below the slow one whose share is at most
    :data:`SHIFT_SHARE`: where a whole-distribution shift is counted."""
    if not shares or slow_ms is None:
        return []
    top = rung_index(slow_ms)
    return [(i, shares[i]) for i in range(1, top) if shares[i] <= SHIFT_SHARE]
