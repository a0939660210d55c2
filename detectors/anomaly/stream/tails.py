"""Calibration: the tail probability of a new error given the errors a series made before.

Each series keeps a small histogram of its past standardised errors (fixed bins, exponentially
forgotten). The probability of an error at least as large as a new one is read from it; beyond
its upper quantile the tail is an exponential fitted to the excesses over that quantile (the
peaks-over-threshold idea of extreme-value statistics), so a probability far below 1/n is still
defined and a heavy-tailed series, whose excesses are large, gets large probabilities for large
errors. The result is what makes scores comparable across series: a probability, not a z.

Pure arithmetic, no I/O; the histogram is plain lists so a state serialises to JSON.
"""

from __future__ import annotations

import math


def _edges() -> tuple[float, ...]:
    fine = [0.25 * i for i in range(16)]  # 0 .. 3.75: where most errors and the tail start fall
    coarse = [4.0 * 1.25**i for i in range(22)]  # 4 .. ~430, geometric
    return (*fine, *coarse)


EDGES = _edges()
"""Lower edges of the bins of standardised error; the last bin is open."""
BINS = len(EDGES)
_RESCALE = 1e150
MIN_EXCESS = 0.25
MAX_SHAPE = 0.45


def prior(weight: float) -> list[float]:
    """Counts of ``weight`` pseudo-errors spread as |N(0, 1)| would fall (a quiet start)."""
    uppers = (*EDGES[1:], math.inf)
    mass = [
        math.erf(hi / math.sqrt(2)) - math.erf(lo / math.sqrt(2))
        for lo, hi in zip(EDGES, uppers, strict=True)
    ]
    return [weight * m for m in mass]


def bin_of(z: float) -> int:
    lo, hi = 0, BINS - 1
    while lo < hi:  # last edge <= z
        mid = (lo + hi + 1) // 2
        if EDGES[mid] <= z:
            lo = mid
        else:
            hi = mid - 1
    return lo


def add(counts: list[float], gain: float, z: float, rate: float) -> float:
    """Add one error with forgetting; returns the next gain (weights grow instead of decaying)."""
    counts[bin_of(z)] += gain
    gain /= 1.0 - rate
    if gain > _RESCALE:
        for i in range(BINS):
            counts[i] /= gain
        gain = 1.0
    return gain


WIDTHS = tuple(EDGES[i + 1] - EDGES[i] if i + 1 < BINS else EDGES[i] * 0.25 for i in range(BINS))
CENTRES = tuple(edge + 0.5 * width for edge, width in zip(EDGES, WIDTHS, strict=True))


def _width(i: int) -> float:
    return WIDTHS[i]


def _quantile(counts: list[float], total: float, upper: float) -> tuple[float, int]:
    """The value with ``upper`` of the mass above it (linear within its bin) and its bin."""
    above = 0.0
    for i in range(BINS - 1, -1, -1):
        if above + counts[i] >= upper * total:
            inside = (upper * total - above) / counts[i] if counts[i] > 0 else 0.0
            return EDGES[i] + _width(i) * (1.0 - inside), i
        above += counts[i]
    return 0.0, 0


def _excess(counts: list[float], zq: float, iq: int) -> tuple[float, float]:
    """Generalised Pareto fit (method of moments) to the excesses over ``zq``: (scale, shape).

    The shape is kept in [0, MAX_SHAPE]: 0 is an exponential tail (light-tailed noise), larger
    is a power-law tail (bursty series such as tweet counts), so a burst that such a series
    makes every few days is not a one-in-a-billion event.
    """
    mass = first = second = 0.0
    for i in range(iq, BINS):
        weight, centre = counts[i], CENTRES[i] - zq
        if i == iq:  # only the part of the quantile's bin above it, at its own middle
            upper = EDGES[i] + WIDTHS[i]
            weight *= max(upper - zq, 0.0) / WIDTHS[i]
            centre = 0.5 * (upper - zq)
        mass += weight
        first += weight * centre
        second += weight * centre * centre
    if mass <= 0.0:
        return 1.0, 0.0
    mean = max(first / mass, MIN_EXCESS)
    var = max(second / mass - mean * mean, 1e-12)
    shape = min(max(0.5 * (1.0 - mean * mean / var), 0.0), MAX_SHAPE)
    return max(mean * (1.0 - shape), MIN_EXCESS), shape


def _beyond(excess: float, scale: float, shape: float) -> float:
    if shape < 1e-6:
        return math.exp(-excess / scale)
    return float((1.0 + shape * excess / scale) ** (-1.0 / shape))


def fit(counts: list[float], quantile: float) -> list[float]:
    """The tail model of a histogram: [upper quantile, Pareto scale, Pareto shape].

    Refitted every few observations by the engine (it moves slowly), which keeps a score cheap.
    """
    total = sum(counts)
    zq, iq = _quantile(counts, total, quantile) if total > 0.0 else (0.0, 0)
    scale, shape = _excess(counts, zq, iq)
    return [zq, scale, shape]


def tail(counts: list[float], z: float, quantile: float, model: list[float]) -> float:
    """P(error >= z) under the histogram, with a Pareto tail beyond its upper quantile."""
    zq, scale, shape = model
    if z > zq:
        return quantile * _beyond(z - zq, scale, shape)
    total = sum(counts)
    if total <= 0.0:
        return 1.0
    i = bin_of(z)
    above = sum(counts[i + 1 :])
    inside = (EDGES[i] + WIDTHS[i] - z) / WIDTHS[i] * counts[i]
    return min(1.0, (above + inside) / total)


def inverse(counts: list[float], p: float, quantile: float, model: list[float]) -> float:
    """The error whose tail probability is ``p`` (the edge of the expected band)."""
    total = sum(counts)
    if total <= 0.0:
        return math.inf
    if p >= quantile:
        return _quantile(counts, total, p)[0]
    zq, scale, shape = model
    ratio = quantile / p
    if shape < 1e-6:
        return zq + scale * math.log(ratio)
    return zq + scale * (float(ratio**shape) - 1.0) / shape


def fisher(pvalues: list[float]) -> float:
    """Fisher's combination of independent p-values: P(chi2 with 2k dof >= -2 sum ln p)."""
    half = -sum(math.log(max(p, 1e-300)) for p in pvalues)
    term = 1.0
    total = 1.0
    for j in range(1, len(pvalues)):
        term *= half / j
        total += term
    return min(1.0, math.exp(-half) * total)
