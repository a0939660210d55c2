"""The streaming anomaly engine: one observation of each of many series in, calibrated verdicts out.

soc's one engine: the live model's banks (``bank.py``) and ``score-csv`` (``replay``) both run
it. The series are rows of a :class:`~detectors.anomaly.stream.vector.Block`; one call of
:meth:`Engine.observe` scores one observation of every row given and learns from it, as a few
dozen array operations. For each series, causally (the verdict at time t uses observations up
to t only):

1. two predictors of the next value: a fast-smoothed *level* (a level shift is a few large
   errors, then absorbed) and a Holt-Winters-like *seasonal* one (level + the offset of the slot,
   hour of day on a working or a rest day); the one with the smaller running error is used, the
   seasonal one only after ``season_min_days`` of history;
2. the error, standardised by that predictor's running mean absolute error, floored by the
   series' resolution (``quantum``: 1 for counts, so a zero-heavy series is not divided by ~0)
   and by a thousandth of the range seen;
3. its tail probability under the series' own past errors (``tails.py``: a forgotten histogram
   with a Pareto tail), and Fisher's combination of the last ``window`` of them (a sustained,
   moderate change); ``p`` is the smaller of the two, doubled (Bonferroni);
4. the score ``-log10(p) / score_decades``: the same scale for every series, one threshold;
5. with ``extreme_margin`` (score-csv's parameters, not ``LIVE``'s), a *new extreme*, beyond the
   whole range seen so far, that the views find at least mildly surprising, is scored at least
   at the alert line (Numenta HTM's "spatial anomaly"; NAB 61.3 -> 71.3).

A silence longer than ``gap_steps`` usual intervals is a collection gap (or a restart, or the
boundary between history and live data): the next ``rewarm`` observations relearn the level and
never alert. Each row keeps its own clock: rows observed together may be at different times
(files replayed side by side), each judged in its own seasonal slot. Must not do I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors.anomaly.stream import season, tails
from detectors.anomaly.stream.config import EngineConfig
from detectors.anomaly.stream.tails import F, I
from detectors.anomaly.stream.vector import (
    NOTE_GAP,
    NOTE_LEARNING,
    NOTE_NONE,
    NOTE_RELEARNING,
    Block,
    Scores,
)
from soc.errors import AnomalyError

HOLD_DEPTH = 4.0
"""A held score is 0 for the first three quarters of the hold, then comes back linearly."""
FIRST_ERRORS = 10
"""Observations before a view's errors enter its tail histogram (the prior stands in)."""
REFIT = 8
"""Observations between two fits of a view's tail model."""
NORMAL_MAE = 1.2533
"""Standard deviation over mean absolute deviation of a normal law: MAE -> sigma."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the engine says of one observation of one series (an alert's explanation)."""

    at: float
    value: float
    expected: float
    low: float
    high: float
    """The band of values whose own tail probability stays above the alert line."""
    p: float
    score: float
    """Reported score in [0, 1] (damped during a hold, 0 while learning or after a gap)."""
    alert: bool
    """The first observation of an episode at or above the alert score."""
    since: float | None
    """Start of the anomalous episode this observation belongs to, if any."""
    note: str = ""
    """``learning`` (too little history), ``gap`` / ``relearning`` (after a collection gap)."""


class Engine:
    """Scores observations of any number of series (rows of a block) with one parameter set."""

    def __init__(
        self, config: EngineConfig | None = None, calendar: season.Calendar = season.PLAIN
    ) -> None:
        self.config = config or EngineConfig()
        self.calendar = calendar
        self.views = self.config.views
        self._alert_p = self.config.alert_p
        if self._alert_p >= self.config.tail_quantile:
            raise AnomalyError("engine: the alert line must lie in the fitted tail")

    def new_block(self) -> Block:
        return Block.empty(self.views, self.config.window)

    def add(self, block: Block, count: int) -> I:
        """Rows for ``count`` new series (fresh states)."""
        return block.add(count, self.config.tail_prior)

    def observe(self, b: Block, rows: I, at: float | F, x: F) -> Scores:
        """Score ``x[i]`` for row ``rows[i]`` at ``at`` (epoch seconds: one time for all the
        rows, or one per row), then learn from it."""
        when = np.broadcast_to(np.asarray(at, dtype=np.float64), rows.shape)
        if np.ndim(at) == 0:
            slots = np.full(rows.shape, self.calendar.slot(float(at)), np.int64)
        else:
            slots = self.calendar.slots(when)
        return self._step(b, rows, when, slots, x)

    def replay(self, times: Sequence[NDArray[Any]], values: Sequence[NDArray[Any]]) -> Scores:
        """Run whole series through the engine, each with its own timestamps (``times[i]``,
        ``values[i]``: one series), stepped side by side in a fresh block: step ``j`` observes
        the ``j``-th value of every series that long. Each series stays causal and alone (no
        state is shared between rows); the cost is one array step per row of the longest series.

        Returns :class:`Scores` of (series, longest) arrays; past a series' end, score 0.
        """
        count = len(times)
        lengths = np.array([len(t) for t in times], np.int64)
        order = np.argsort(-lengths, kind="stable")  # the series still running are a prefix
        longest = int(lengths.max()) if count else 0
        at = np.full((longest, count), math.nan)
        x = np.zeros((longest, count))
        slots = np.zeros((longest, count), np.int64)
        for col, i in enumerate(order):
            n = lengths[i]
            at[:n, col] = times[i]
            x[:n, col] = values[i]
            slots[:n, col] = self.calendar.slots(np.asarray(times[i], dtype=np.float64))
        out = _Tape(longest, count)
        block = self.new_block()
        rows = self.add(block, count)
        running = np.searchsorted(-lengths[order], -np.arange(longest), side="left")
        for j in range(longest):
            k = int(running[j])
            out.put(j, k, self._step(block, rows[:k], at[j, :k], slots[j, :k], x[j, :k]))
        return out.scores(np.argsort(order))

    def _step(self, b: Block, rows: I, when: F, slots: I, x: F) -> Scores:
        cfg = self.config
        k = rows.shape[0]
        expected, low, high = x.copy(), x.copy(), x.copy()
        p_out, score_out = np.ones(k), np.zeros(k)
        alert_out, since_out = np.zeros(k, bool), np.full(k, math.nan)
        note = np.full(k, NOTE_LEARNING, np.int64)
        new = b.n[rows] == 0
        if new.any():
            r0, x0 = rows[new], x[new]
            b.n[r0] = 1
            b.first_t[r0] = b.last_t[r0] = when[new]
            b.last_x[r0] = b.slevel[r0] = b.lo[r0] = b.hi[r0] = x0
            b.levels[r0] = x0[:, None]
            b.counts[r0] = (x0 >= 0.0) & (x0 == np.trunc(x0))
        old = ~new
        r, v, at, slot = rows[old], x[old], when[old], slots[old]
        m = r.shape[0]
        if m == 0:
            return Scores(expected, low, high, p_out, score_out, alert_out, since_out, note)
        twin = slot % 24
        ar = np.arange(m)
        sn = b.season_n[r]
        # a rest day's hour not learnt yet: the working day's
        seff = np.where((sn[ar, slot] < 2) & (sn[ar, twin] >= 2), twin, slot)
        gap = (b.step[r] > 0.0) & (at - b.last_t[r] > cfg.gap_steps * b.step[r])
        if gap.any():
            rg, vg = r[gap], v[gap]
            b.levels[rg] = vg[:, None]
            # the slot the seasonal view predicts with (a rest day's unlearnt hour borrows the
            # working day's): restarting from another slot's offset shifts every prediction
            b.slevel[rg] = vg - b.season[rg, seff[gap]]
            b.rec_len[rg] = 0
            b.quiet[rg] = cfg.rewarm
            b.since[rg] = math.nan
        n = b.n[r]
        # predictions
        maes, track = b.maes[r], b.track[r]
        days = (b.last_t[r] - b.first_t[r]) / 86400.0
        sready = (days >= cfg.season_min_days) & (sn[ar, seff] >= 2)
        slevel = b.slevel[r]
        seasonal = np.where(sready, slevel + b.season[r, seff], math.nan)
        exp = np.concatenate([b.levels[r], seasonal[:, None]], axis=1)
        quantum = b.quantum[r]
        floor = np.maximum.reduce(
            [
                np.where(np.isfinite(quantum), 0.5 * quantum, 0.0),
                1e-3 * (b.hi[r] - b.lo[r]),
                1e-9 * np.abs(b.last_x[r]),
                np.full(m, 1e-12),
            ]
        )
        zs = np.abs(v[:, None] - exp) / np.maximum(NORMAL_MAE * maes, floor[:, None])
        ready = ~np.isnan(exp)
        ps = self._view_ps(b, r, n, zs, ready)
        # The view that has erred least recently judges: a daily jump the seasonal view expects
        # is not an anomaly because the plain level did not see it coming. Every view with a
        # track record close to the best one's must be surprised too.
        best = np.argmin(np.where(ready, track, math.inf), axis=1)
        competent = ready & (track <= cfg.competent * track[ar, best][:, None])
        p = np.max(np.where(competent, ps, -math.inf), axis=1)
        exp_best, mae_best = exp[ar, best], maes[ar, best]
        counts = b.counts[r]
        p = np.where(counts, np.maximum(p, tails.count_tail(v, exp_best)), p)
        scale = np.maximum(NORMAL_MAE * mae_best, floor)
        band = tails.inverse(b.hists[r, best], self._alert_p, cfg.tail_quantile, b.fits[r, best])
        width = band * scale
        learning = (n < cfg.warmup) | (b.quiet[r] > 0)
        extreme = self._extreme(b, r, v)
        notes = np.where(
            gap,
            NOTE_GAP,
            np.where(learning, np.where(n < cfg.warmup, NOTE_LEARNING, NOTE_RELEARNING), NOTE_NONE),
        )
        self._learn(b, r, v, n, at, slot, zs)
        with np.errstate(divide="ignore"):
            raw = np.minimum(1.0, -np.log10(np.maximum(p, 1e-300)) / cfg.score_decades)
        score = np.where(learning, 0.0, raw)
        extreme &= (
            ~learning & (n >= cfg.extreme_after) & (raw >= cfg.extreme_share * cfg.alert_score)
        )
        p = np.where(extreme, np.minimum(p, self._alert_p), p)
        reported, alert, since = self._episode(b, r, at, score, extreme)
        expected[old], low[old], high[old] = exp_best, exp_best - width, exp_best + width
        p_out[old], score_out[old], alert_out[old] = p, reported, alert
        since_out[old], note[old] = since, notes
        return Scores(expected, low, high, p_out, score_out, alert_out, since_out, note)

    def _extreme(self, b: Block, r: I, v: F) -> np.ndarray:
        """Rows whose value lies beyond the range seen so far by more than ``extreme_margin``
        of it: a value the series has never come near, however noisy it has been."""
        margin = self.config.extreme_margin
        if margin is None:
            return np.zeros(r.shape, bool)
        lo, hi = b.lo[r], b.hi[r]
        # beyond by more than the resolution too: a count series of 0s and 1s whose first 2
        # comes is judged by its count tail, not called a new extreme
        past = np.maximum(
            margin * (hi - lo), np.where(np.isfinite(b.quantum[r]), b.quantum[r], 0.0)
        )
        return (hi > lo) & ((v > hi + past) | (v < lo - past))

    def _view_ps(self, b: Block, r: I, n: I, zs: F, ready: np.ndarray) -> F:
        """Each view's tail probability of this error, or of its recent errors together."""
        cfg = self.config
        ps = np.ones(zs.shape)
        for view in range(self.views):
            rv = ready[:, view]
            rr = r[rv]
            refit = (n[rv] % REFIT == 0) | ~b.has_fit[rr, view]
            if refit.any():
                rf = rr[refit]
                b.fits[rf, view] = tails.fit(b.hists[rf, view], cfg.tail_quantile)
                b.has_fit[rf, view] = True
            pp = tails.tail(b.hists[rr, view], zs[rv, view], cfg.tail_quantile, b.fits[rr, view])
            rec, length = b.recents[rr, view], b.rec_len[rr, view]
            full = length >= cfg.window
            rec[full, :-1] = rec[full, 1:]
            rec[np.arange(rr.shape[0]), np.minimum(length, cfg.window - 1)] = pp
            length = np.minimum(length + 1, cfg.window)
            b.recents[rr, view], b.rec_len[rr, view] = rec, length
            combined = np.minimum(1.0, 2.0 * np.minimum(pp, tails.fisher(rec, length)))
            ps[rv, view] = np.where(length < 2, pp, combined)
        return ps

    def _episode(
        self, b: Block, r: I, at: F, score: F, extreme: np.ndarray
    ) -> tuple[F, np.ndarray, F]:
        """Open, continue or close each row's episode; damp the reported score during a hold.

        One alert per episode: after it, scores come back gradually over ``hold`` observations,
        so the rest of the episode does not alert again and again. With ``hold_open``, the
        countdown waits while the episode is still open (score at or above half the alert
        line): a long disturbance is one episode, not one per hold. A new extreme is reported at
        the alert line or above even during a hold (a value beyond anything seen is news), but
        alerts only when no hold runs (it then starts one).
        """
        cfg = self.config
        hold = b.hold[r]
        held = hold > 0
        dec = held & ((not cfg.hold_open) | (score < cfg.alert_score / 2.0))
        hold = hold - dec
        damp = np.maximum(0.0, 1.0 - HOLD_DEPTH * (hold + 1) / (cfg.hold + 1))
        reported = np.where(held, score * damp, score)
        score = np.where(extreme, np.maximum(score, cfg.alert_score), score)
        reported = np.where(extreme, np.maximum(reported, cfg.alert_score), reported)
        alert = ~held & (score >= cfg.alert_score)
        b.hold[r] = np.where(alert, cfg.hold, hold)
        since = b.since[r]
        since = np.where(
            score >= cfg.alert_score,
            np.where(np.isnan(since), at, since),
            np.where(score < cfg.alert_score / 2.0, math.nan, since),
        )
        b.since[r] = since
        return reported, alert, since

    def _learn(self, b: Block, r: I, v: F, n: I, at: F, slot: I, zs: F) -> None:
        cfg = self.config
        for view in range(self.views):
            # The first errors, against a noise scale learnt from a handful of values, say
            # nothing about the series' tail: they would haunt it for hundreds of observations.
            z = zs[:, view]
            ok = ~np.isnan(z) & (n >= FIRST_ERRORS)
            if ok.any():
                ro = r[ok]
                b.hists[ro, view, tails.bin_of(z[ok])] += b.gains[ro, view]
                gains = b.gains[ro, view] / (1.0 - cfg.tail_rate)
                big = gains > tails.RESCALE
                if big.any():
                    b.hists[ro[big], view] /= gains[big][:, None]
                    gains[big] = 1.0
                b.gains[ro, view] = gains
        levels, slevel = b.levels[r], b.slevel[r]
        errors = np.concatenate(
            [np.abs(v[:, None] - levels), np.abs(v - slevel - b.season[r, slot])[:, None]], axis=1
        )
        # A running mean until the rate's own memory is filled: a noise scale taken from the
        # first error or two would make every later error look huge.
        nf = n.astype(np.float64)
        rate = np.maximum(cfg.error_rate, 1.0 / nf)[:, None]
        trate = np.maximum(cfg.select_rate, 1.0 / nf)[:, None]
        maes, track = b.maes[r], b.track[r]
        cap = np.where((n > 10)[:, None], 5.0 * np.maximum(maes, 1e-12), errors)
        capped = np.minimum(errors, cap)
        b.maes[r] = maes + rate * (capped - maes)
        b.track[r] = track + trate * (capped - track)
        b.levels[r] = levels + np.array(cfg.level_rates)[None, :] * (v[:, None] - levels)
        self._learn_season(b, r, v, slot, slevel)
        self._track(b, r, v, n, at)

    def _learn_season(self, b: Block, r: I, v: F, slot: I, slevel: F) -> None:
        """Holt-Winters-like: the level moves with what the slot's offset does not explain,
        and the slot's offset moves with what the level does not."""
        cfg = self.config
        twin = slot % 24
        # A rest day's hour starts from the working day's (no weekly pattern assumed yet).
        copy = (twin != slot) & (b.season_n[r, slot] == 0) & (b.season_n[r, twin] > 0)
        if copy.any():
            b.season[r[copy], slot[copy]] = b.season[r[copy], twin[copy]]
            b.season_n[r[copy], slot[copy]] = 1
        first = b.season_n[r, slot] == 0
        s_slot = b.season[r, slot]
        new_slevel = slevel + cfg.season_level_rate * ((v - s_slot) - slevel)
        learnt = s_slot + cfg.season_rate * (v - new_slevel - s_slot)
        b.season[r, slot] = np.where(first, v - slevel, learnt)
        b.slevel[r] = np.where(first, slevel, new_slevel)
        b.season_n[r, slot] += 1

    def _track(self, b: Block, r: I, v: F, n: I, at: F) -> None:
        """Interval, range and resolution of each series; the relearning countdown."""
        step = b.step[r]
        dt = at - b.last_t[r]
        bounded = np.where(step > 0.0, np.minimum(dt, 2.0 * step), dt)
        moved = np.where(step == 0.0, bounded, step + 0.1 * (bounded - step))
        b.step[r] = np.where(dt > 0.0, moved, step)
        b.counts[r] = b.counts[r] & (v >= 0.0) & (v == np.trunc(v))
        change = np.abs(v - b.last_x[r])
        b.quantum[r] = np.where(change > 0.0, np.minimum(b.quantum[r], change), b.quantum[r])
        b.lo[r] = np.minimum(b.lo[r], v)
        b.hi[r] = np.maximum(b.hi[r], v)
        b.n[r] = n + 1
        b.quiet[r] = np.maximum(0, b.quiet[r] - 1)
        b.last_t[r] = np.maximum(b.last_t[r], at)
        b.last_x[r] = v


class _Tape:
    """The scores of a replay, step by step: (steps, series) arrays, transposed at the end."""

    def __init__(self, steps: int, count: int) -> None:
        self.expected = np.full((steps, count), math.nan)
        self.low = np.full((steps, count), math.nan)
        self.high = np.full((steps, count), math.nan)
        self.p = np.ones((steps, count))
        self.score = np.zeros((steps, count))
        self.alert = np.zeros((steps, count), bool)
        self.since = np.full((steps, count), math.nan)
        self.note = np.zeros((steps, count), np.int64)

    def put(self, j: int, k: int, s: Scores) -> None:
        self.expected[j, :k], self.low[j, :k], self.high[j, :k] = s.expected, s.low, s.high
        self.p[j, :k], self.score[j, :k], self.alert[j, :k] = s.p, s.score, s.alert
        self.since[j, :k], self.note[j, :k] = s.since, s.note

    def scores(self, columns: I) -> Scores:
        """Series in the caller's order (``columns[i]``: the column of series ``i``)."""
        return Scores(
            *(
                np.ascontiguousarray(getattr(self, name)[:, columns].T)
                for name in ("expected", "low", "high", "p", "score", "alert", "since", "note")
            )
        )
