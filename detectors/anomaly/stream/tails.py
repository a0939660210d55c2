"""Calibration: the tail probability of a new error given the errors a series made before.

Each series keeps a small histogram of its past standardised errors (fixed bins, exponentially
forgotten). The probability of an error at least as large as a new one is read from it; beyond
its upper quantile the tail is a generalised Pareto law fitted to the excesses over that quantile
(the peaks-over-threshold idea of extreme-value statistics), so a probability far below 1/n is
still defined and a heavy-tailed series, whose excesses are large, gets large probabilities for
large errors. The result is what makes scores comparable across series: a probability, not a z.

Every function works on many series at once: ``h`` is a (series, BINS) array of histograms, one
row per series, as the engine holds them. Pure arithmetic, no I/O, no state of its own.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import special

F = NDArray[np.float64]
I = NDArray[np.int64]  # noqa: E741


def _edges() -> tuple[float, ...]:
    fine = [0.25 * i for i in range(16)]  # 0 .. 3.75: where most errors and the tail start fall
    coarse = [4.0 * 1.25**i for i in range(22)]  # 4 .. ~430, geometric
    return (*fine, *coarse)


_EDGES = _edges()
BINS = len(_EDGES)
EDGES = np.array(_EDGES)
"""Lower edges of the bins of standardised error; the last bin is open."""
WIDTHS = np.array(
    [_EDGES[i + 1] - _EDGES[i] if i + 1 < BINS else _EDGES[i] * 0.25 for i in range(BINS)]
)
CENTRES = EDGES + 0.5 * WIDTHS
MIN_EXCESS = 0.25
MAX_SHAPE = 0.45
RESCALE = 1e150
"""Histogram weights grow instead of decaying (a gain per series); past this they are rescaled."""


def prior(weight: float) -> F:
    """Counts of ``weight`` pseudo-errors spread as |N(0, 1)| would fall (a quiet start)."""
    uppers = (*_EDGES[1:], math.inf)
    mass = [
        math.erf(hi / math.sqrt(2)) - math.erf(lo / math.sqrt(2))
        for lo, hi in zip(_EDGES, uppers, strict=True)
    ]
    return weight * np.array(mass)


def bin_of(z: F) -> I:
    """The bin of each standardised error (the last edge at or below it)."""
    return np.clip(np.searchsorted(EDGES, z, side="right") - 1, 0, BINS - 1)


def _total(h: F) -> F:
    return np.cumsum(h, axis=-1)[..., -1]  # summed in order, left to right


def _quantile(h: F, total: F, upper: float) -> tuple[F, I]:
    """The value with ``upper`` of the mass above it (linear within its bin) and its bin."""
    suffix = np.cumsum(h[:, ::-1], axis=1)[:, ::-1]  # suffix[i] = h[i] + ... + h[-1]
    cond = suffix >= upper * total[:, None]
    found = cond.any(axis=1)
    i = BINS - 1 - np.argmax(cond[:, ::-1], axis=1)
    rows = np.arange(h.shape[0])
    above = np.where(i + 1 < BINS, suffix[rows, np.minimum(i + 1, BINS - 1)], 0.0)
    hi = h[rows, i]
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = np.where(hi > 0, (upper * total - above) / hi, 0.0)
    zq = EDGES[i] + WIDTHS[i] * (1.0 - inside)
    return np.where(found, zq, 0.0), np.where(found, i, 0)


def fit(h: F, quantile: float) -> F:
    """The tail model of each histogram: (series, 3) of [upper quantile, Pareto scale, shape].

    The generalised Pareto law is fitted to the excesses over the quantile by the method of
    moments. The shape is kept in [0, MAX_SHAPE]: 0 is an exponential tail (light-tailed noise),
    larger is a power-law tail (bursty series such as tweet counts), so a burst that such a series
    makes every few days is not a one-in-a-billion event. Refitted every few observations by the
    engine (it moves slowly), which keeps a score cheap.
    """
    total = _total(h)
    zq, iq = _quantile(h, total, quantile)
    zq, iq = np.where(total > 0, zq, 0.0), np.where(total > 0, iq, 0)
    rows = np.arange(h.shape[0])
    j = np.arange(BINS)[None, :]
    weight = np.where(j >= iq[:, None], h, 0.0)
    centre = CENTRES[None, :] - zq[:, None]
    upper = EDGES[iq] + WIDTHS[iq]
    # only the part of the quantile's bin above it, at its own middle
    weight[rows, iq] *= np.maximum(upper - zq, 0.0) / WIDTHS[iq]
    centre[rows, iq] = 0.5 * (upper - zq)
    mass = _total(weight)
    first = _total(weight * centre)
    second = _total(weight * centre * centre)
    safe = np.where(mass > 0, mass, 1.0)
    mean = np.maximum(first / safe, MIN_EXCESS)
    var = np.maximum(second / safe - mean * mean, 1e-12)
    shape = np.clip(0.5 * (1.0 - mean * mean / var), 0.0, MAX_SHAPE)
    scale = np.maximum(mean * (1.0 - shape), MIN_EXCESS)
    return np.stack([zq, np.where(mass > 0, scale, 1.0), np.where(mass > 0, shape, 0.0)], axis=1)


def _beyond(excess: F, scale: F, shape: F) -> F:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        power = (1.0 + shape * excess / scale) ** (-1.0 / np.where(shape < 1e-6, 1.0, shape))
    return np.where(shape < 1e-6, np.exp(-excess / scale), power)


def tail(h: F, z: F, quantile: float, model: F) -> F:
    """P(error >= z) under each histogram, with its Pareto tail beyond its upper quantile."""
    zq, scale, shape = model[:, 0], model[:, 1], model[:, 2]
    far = quantile * _beyond(z - zq, scale, shape)
    total = _total(h)
    i = bin_of(z)
    rows = np.arange(h.shape[0])
    suffix = np.cumsum(h[:, ::-1], axis=1)[:, ::-1]
    above = np.where(i + 1 < BINS, suffix[rows, np.minimum(i + 1, BINS - 1)], 0.0)
    inside = (EDGES[i] + WIDTHS[i] - z) / WIDTHS[i] * h[rows, i]
    with np.errstate(divide="ignore", invalid="ignore"):
        near = np.where(total > 0, np.minimum(1.0, (above + inside) / total), 1.0)
    return np.where(z > zq, far, near)


def inverse(h: F, p: float, quantile: float, model: F) -> F:
    """The error whose tail probability is ``p`` (the edge of the expected band), per row.

    ``p`` lies below ``quantile``, in the fitted tail, as every alert line does.
    """
    zq, scale, shape = model[:, 0], model[:, 1], model[:, 2]
    ratio = quantile / p
    with np.errstate(divide="ignore", invalid="ignore"):
        power = zq + scale * (ratio ** np.where(shape < 1e-6, 1.0, shape) - 1.0) / shape
    out = np.where(shape < 1e-6, zq + scale * math.log(ratio), power)
    return np.where(_total(h) > 0, out, math.inf)


def fisher(recents: F, length: I) -> F:
    """Fisher's combination of the first ``length`` p-values of each row (independent ones):
    P(chi2 with 2k dof >= -2 sum ln p)."""
    window = recents.shape[1]
    used = np.arange(window)[None, :] < length[:, None]
    half = -np.where(used, np.log(np.maximum(recents, 1e-300)), 0.0).sum(axis=1)
    term = np.ones_like(half)
    total = np.ones_like(half)
    for j in range(1, window):
        term = term * half / j
        total = total + np.where(j < length, term, 0.0)
    out: F = np.minimum(1.0, np.exp(-half) * total)
    return out


def count_tail(value: F, expected: F) -> F:
    """Poisson tail of a count against its expected value: a floor under a count's p-value.

    The error histogram of a mostly-zero series knows a few 1s; its fitted tail would call the
    first 2 a one-in-a-million event, which for a Poisson mean of 0.1 it is not (p = 0.005).
    Each branch is computed only where it applies.
    """
    mean = np.maximum(expected, 1e-3)
    out: F = np.ones_like(value)
    up = (value >= mean) & (value >= 1.0)
    down = value < mean
    out[up] = special.gammainc(value[up], mean[up])
    out[down] = special.gammaincc(value[down] + 1.0, mean[down])
    return out
