"""The streaming engine over many series at once: per-series state as numpy arrays (one row each).

Same arithmetic as ``engine.py`` (:class:`~detectors.anomaly.stream.engine.Engine`), step for
step, but one observation of *every* observed row of a :class:`Block` per call: all the series
of a live bank share the bucket's time, hence its seasonal slot, so the per-series Python calls
become a few dozen array operations. ``tests/detectors/anomaly/test_stream_vector.py`` checks the
scores equal the scalar engine's within float tolerance (sums may be taken in another order).

A :class:`Block` saves to compressed ``.npz`` bytes (``to_bytes`` / ``from_bytes``: numeric arrays
only, ``allow_pickle=False``, so loading cannot run code). No I/O beyond that; only this module
changes a block.
"""

from __future__ import annotations

import io
import math
import zipfile
from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import NDArray
from scipy import special

from detectors.anomaly.stream import season, tails
from detectors.anomaly.stream.state import SeriesState
from soc.errors import AnomalyError

F = NDArray[np.float64]
I = NDArray[np.int64]  # noqa: E741
B = NDArray[np.bool_]
EDGES = np.array(tails.EDGES)
WIDTHS = np.array(tails.WIDTHS)
CENTRES = np.array(tails.CENTRES)
NBINS = tails.BINS
NOTE_NONE, NOTE_LEARNING, NOTE_RELEARNING, NOTE_GAP = 0, 1, 2, 3
NOTES = ("", "learning", "relearning", "gap")


@dataclass(slots=True)
class Block:
    """The states of ``size`` series (rows); arrays have room for more (``capacity``)."""

    n: I
    first_t: F
    last_t: F
    step: F
    last_x: F
    lo: F
    hi: F
    counts: B
    quantum: F
    levels: F  # (rows, plain views)
    slevel: F
    season: F  # (rows, SLOTS)
    season_n: I
    maes: F  # (rows, views)
    track: F
    hists: F  # (rows, views, BINS)
    gains: F
    has_fit: B
    fits: F  # (rows, views, 3)
    recents: F  # (rows, views, window), oldest first
    rec_len: I
    quiet: I
    hold: I
    since: F  # NaN: no episode open
    size: int = 0

    @classmethod
    def empty(cls, views: int, window: int, capacity: int = 0) -> Block:
        c = capacity
        return cls(
            n=np.zeros(c, np.int64),
            first_t=np.zeros(c),
            last_t=np.zeros(c),
            step=np.zeros(c),
            last_x=np.zeros(c),
            lo=np.full(c, math.inf),
            hi=np.full(c, -math.inf),
            counts=np.ones(c, bool),
            quantum=np.full(c, math.inf),
            levels=np.zeros((c, views - 1)),
            slevel=np.zeros(c),
            season=np.zeros((c, season.SLOTS)),
            season_n=np.zeros((c, season.SLOTS), np.int64),
            maes=np.zeros((c, views)),
            track=np.zeros((c, views)),
            hists=np.zeros((c, views, NBINS)),
            gains=np.ones((c, views)),
            has_fit=np.zeros((c, views), bool),
            fits=np.zeros((c, views, 3)),
            recents=np.zeros((c, views, window)),
            rec_len=np.zeros((c, views), np.int64),
            quiet=np.zeros(c, np.int64),
            hold=np.zeros(c, np.int64),
            since=np.full(c, math.nan),
        )

    def _arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "size"}

    def add(self, count: int, prior_weight: float) -> NDArray[np.int64]:
        """Room for ``count`` new series; returns their rows (fresh states)."""
        views, window = self.maes.shape[1], self.recents.shape[2]
        need = self.size + count
        if need > self.n.shape[0]:
            fresh = Block.empty(views, window, max(need, 2 * self.n.shape[0], 64))
            for name, old in self._arrays().items():
                getattr(fresh, name)[: self.size] = old[: self.size]
            for name, arr in fresh._arrays().items():
                setattr(self, name, arr)
        rows = np.arange(self.size, need)
        self.hists[rows] = np.array(tails.prior(prior_weight))
        self.size = need
        return rows

    def to_bytes(self) -> bytes:
        """An ``.npz`` (deflated zip of ``.npy``), byte for byte the same for the same state."""
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, arr in self._arrays().items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                with zf.open(info, "w") as f:
                    np.lib.format.write_array(f, arr[: self.size], allow_pickle=False)
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Block:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {f.name: npz[f.name] for f in fields(cls) if f.name != "size"}
        if arrays["hists"].shape[2:] != (NBINS,) or arrays["season"].shape[1:] != (season.SLOTS,):
            raise AnomalyError("stream block checkpoint with wrong sizes: start afresh")
        return cls(**arrays, size=int(arrays["n"].shape[0]))

    def put_state(self, row: int, s: SeriesState, window: int) -> None:
        """Copy a scalar state (an old JSON checkpoint) into a row."""
        for name in ("n", "first_t", "last_t", "step", "last_x", "lo", "hi", "counts"):
            getattr(self, name)[row] = getattr(s, name)
        self.quantum[row], self.levels[row] = s.quantum, s.levels
        self.slevel[row], self.season[row], self.season_n[row] = s.slevel, s.season, s.season_n
        self.maes[row], self.track[row], self.hists[row] = s.maes, s.track, s.hists
        self.gains[row] = s.gains
        for v, fit in enumerate(s.fits):
            self.has_fit[row, v] = bool(fit)
            self.fits[row, v] = fit if fit else (0.0, 0.0, 0.0)
        for v, recent in enumerate(s.recents):
            kept = recent[-window:]
            self.rec_len[row, v] = len(kept)
            self.recents[row, v, : len(kept)] = kept
        self.quiet[row], self.hold[row] = s.quiet, s.hold
        self.since[row] = math.nan if s.since is None else s.since


@dataclass(frozen=True, slots=True)
class Scores:
    """Verdicts of the observed rows, as arrays aligned with the rows given."""

    expected: F
    low: F
    high: F
    p: F
    score: F
    alert: B
    since: F
    note: I


def _total(h: F) -> F:
    return np.cumsum(h, axis=-1)[..., -1]  # sequential, as Python's sum()


def _quantile(h: F, total: F, upper: float) -> tuple[F, I]:
    suffix = np.cumsum(h[:, ::-1], axis=1)[:, ::-1]  # suffix[i] = h[i] + ... + h[-1]
    cond = suffix >= upper * total[:, None]
    found = cond.any(axis=1)
    i = NBINS - 1 - np.argmax(cond[:, ::-1], axis=1)
    rows = np.arange(h.shape[0])
    above = np.where(i + 1 < NBINS, suffix[rows, np.minimum(i + 1, NBINS - 1)], 0.0)
    hi = h[rows, i]
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = np.where(hi > 0, (upper * total - above) / hi, 0.0)
    zq = EDGES[i] + WIDTHS[i] * (1.0 - inside)
    return np.where(found, zq, 0.0), np.where(found, i, 0)


def fit(h: F, quantile: float) -> F:
    """``tails.fit`` of each row of ``h`` (rows, BINS): (rows, 3)."""
    total = _total(h)
    zq, iq = _quantile(h, total, quantile)
    zq, iq = np.where(total > 0, zq, 0.0), np.where(total > 0, iq, 0)
    rows = np.arange(h.shape[0])
    j = np.arange(NBINS)[None, :]
    weight = np.where(j >= iq[:, None], h, 0.0)
    centre = CENTRES[None, :] - zq[:, None]
    upper = EDGES[iq] + WIDTHS[iq]
    weight[rows, iq] *= np.maximum(upper - zq, 0.0) / WIDTHS[iq]
    centre[rows, iq] = 0.5 * (upper - zq)
    mass = _total(weight)
    first = _total(weight * centre)
    second = _total(weight * centre * centre)
    safe = np.where(mass > 0, mass, 1.0)
    mean = np.maximum(first / safe, tails.MIN_EXCESS)
    var = np.maximum(second / safe - mean * mean, 1e-12)
    shape = np.clip(0.5 * (1.0 - mean * mean / var), 0.0, tails.MAX_SHAPE)
    scale = np.maximum(mean * (1.0 - shape), tails.MIN_EXCESS)
    return np.stack([zq, np.where(mass > 0, scale, 1.0), np.where(mass > 0, shape, 0.0)], axis=1)


def _beyond(excess: F, scale: F, shape: F) -> F:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        power = (1.0 + shape * excess / scale) ** (-1.0 / np.where(shape < 1e-6, 1.0, shape))
    return np.where(shape < 1e-6, np.exp(-excess / scale), power)


def tail(h: F, z: F, quantile: float, model: F) -> F:
    """``tails.tail`` of each row."""
    zq, scale, shape = model[:, 0], model[:, 1], model[:, 2]
    far = quantile * _beyond(z - zq, scale, shape)
    total = _total(h)
    i = np.searchsorted(EDGES, z, side="right") - 1
    i = np.clip(i, 0, NBINS - 1)
    rows = np.arange(h.shape[0])
    suffix = np.cumsum(h[:, ::-1], axis=1)[:, ::-1]
    above = np.where(i + 1 < NBINS, suffix[rows, np.minimum(i + 1, NBINS - 1)], 0.0)
    inside = (EDGES[i] + WIDTHS[i] - z) / WIDTHS[i] * h[rows, i]
    with np.errstate(divide="ignore", invalid="ignore"):
        near = np.where(total > 0, np.minimum(1.0, (above + inside) / total), 1.0)
    return np.where(z > zq, far, near)


def inverse(h: F, p: float, quantile: float, model: F) -> F:
    """``tails.inverse`` of each row (``p`` below ``quantile``, as every alert line is)."""
    zq, scale, shape = model[:, 0], model[:, 1], model[:, 2]
    ratio = quantile / p
    with np.errstate(divide="ignore", invalid="ignore"):
        power = zq + scale * (ratio ** np.where(shape < 1e-6, 1.0, shape) - 1.0) / shape
    out = np.where(shape < 1e-6, zq + scale * math.log(ratio), power)
    return np.where(_total(h) > 0, out, math.inf)


def fisher(recents: F, length: I) -> F:
    """``tails.fisher`` of the first ``length`` p-values of each row."""
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
    """``engine._count_tail`` of each row (each branch computed only where it applies)."""
    mean = np.maximum(expected, 1e-3)
    out: F = np.ones_like(value)
    up = (value >= mean) & (value >= 1.0)
    down = value < mean
    out[up] = special.gammainc(value[up], mean[up])
    out[down] = special.gammaincc(value[down] + 1.0, mean[down])
    return out
