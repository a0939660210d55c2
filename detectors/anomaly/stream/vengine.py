"""One bucket of many series through the engine at once: ``engine.Engine.observe`` on arrays.

:class:`VectorEngine` owns the per-bucket update of a ``vector.Block`` (all observed rows share
one time, hence one seasonal slot); the arithmetic helpers and the block itself are
``vector.py``'s. Must stay equal to the scalar engine (tested).
"""

from __future__ import annotations

import math

import numpy as np

from detectors.anomaly.stream import season, vector
from detectors.anomaly.stream.config import EngineConfig
from detectors.anomaly.stream.engine import FIRST_ERRORS, HOLD_DEPTH, NORMAL_MAE, REFIT
from detectors.anomaly.stream.vector import Block, Scores
from soc.errors import AnomalyError


class VectorEngine:
    """Scores one observation of each given row of a block, with one parameter set."""

    def __init__(
        self, config: EngineConfig | None = None, calendar: season.Calendar = season.PLAIN
    ) -> None:
        self.config = config or EngineConfig()
        self.calendar = calendar
        self.views = self.config.views
        self._alert_p = self.config.alert_p
        if self._alert_p >= self.config.tail_quantile:
            raise AnomalyError("vector engine: the alert line must lie in the fitted tail")

    def new_block(self) -> Block:
        return Block.empty(self.views, self.config.window)

    def add(self, block: Block, count: int) -> vector.I:
        return block.add(count, self.config.tail_prior)

    def observe(self, b: Block, rows: vector.I, at: float, x: vector.F) -> Scores:
        """Score ``x[i]`` for row ``rows[i]`` at ``at`` (epoch seconds), then learn from it."""
        cfg = self.config
        k = rows.shape[0]
        slot = self.calendar.slot(at)
        twin = slot % 24
        expected, low, high = x.copy(), x.copy(), x.copy()
        p_out, score_out = np.ones(k), np.zeros(k)
        alert_out, since_out = np.zeros(k, bool), np.full(k, math.nan)
        note = np.full(k, vector.NOTE_LEARNING, np.int64)
        new = b.n[rows] == 0
        if new.any():
            r0, x0 = rows[new], x[new]
            b.n[r0] = 1
            b.first_t[r0] = b.last_t[r0] = at
            b.last_x[r0] = b.slevel[r0] = b.lo[r0] = b.hi[r0] = x0
            b.levels[r0] = x0[:, None]
            b.counts[r0] = (x0 >= 0.0) & (x0 == np.trunc(x0))
        old = ~new
        r, v = rows[old], x[old]
        m = r.shape[0]
        if m == 0:
            return Scores(expected, low, high, p_out, score_out, alert_out, since_out, note)
        ar = np.arange(m)
        gap = (b.step[r] > 0.0) & (at - b.last_t[r] > cfg.gap_steps * b.step[r])
        if gap.any():
            rg, vg = r[gap], v[gap]
            b.levels[rg] = vg[:, None]
            b.slevel[rg] = vg - b.season[rg, slot]
            b.rec_len[rg] = 0
            b.quiet[rg] = cfg.rewarm
            b.since[rg] = math.nan
        n = b.n[r]
        # predictions
        maes, track = b.maes[r], b.track[r]
        days = (b.last_t[r] - b.first_t[r]) / 86400.0
        sn = b.season_n[r]
        seff = np.where((sn[:, slot] < 2) & (sn[:, twin] >= 2), twin, slot)
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
        ps = np.ones((m, self.views))
        for view in range(self.views):
            rv = ready[:, view]
            rr = r[rv]
            refit = (n[rv] % REFIT == 0) | ~b.has_fit[rr, view]
            if refit.any():
                rf = rr[refit]
                b.fits[rf, view] = vector.fit(b.hists[rf, view], cfg.tail_quantile)
                b.has_fit[rf, view] = True
            pp = vector.tail(b.hists[rr, view], zs[rv, view], cfg.tail_quantile, b.fits[rr, view])
            rec, length = b.recents[rr, view], b.rec_len[rr, view]
            full = length >= cfg.window
            rec[full, :-1] = rec[full, 1:]
            rec[np.arange(rr.shape[0]), np.minimum(length, cfg.window - 1)] = pp
            length = np.minimum(length + 1, cfg.window)
            b.recents[rr, view], b.rec_len[rr, view] = rec, length
            combined = np.minimum(1.0, 2.0 * np.minimum(pp, vector.fisher(rec, length)))
            ps[rv, view] = np.where(length < 2, pp, combined)
        best = np.argmin(np.where(ready, track, math.inf), axis=1)
        competent = ready & (track <= cfg.competent * track[ar, best][:, None])
        p = np.max(np.where(competent, ps, -math.inf), axis=1)
        exp_best, mae_best = exp[ar, best], maes[ar, best]
        counts = b.counts[r]
        p = np.where(counts, np.maximum(p, vector.count_tail(v, exp_best)), p)
        scale = np.maximum(NORMAL_MAE * mae_best, floor)
        band = vector.inverse(b.hists[r, best], self._alert_p, cfg.tail_quantile, b.fits[r, best])
        width = band * scale
        learning = (n < cfg.warmup) | (b.quiet[r] > 0)
        notes = np.where(
            gap,
            vector.NOTE_GAP,
            np.where(
                learning,
                np.where(n < cfg.warmup, vector.NOTE_LEARNING, vector.NOTE_RELEARNING),
                vector.NOTE_NONE,
            ),
        )
        self._learn(b, r, v, n, at, slot, zs)
        with np.errstate(divide="ignore"):
            raw = np.minimum(1.0, -np.log10(np.maximum(p, 1e-300)) / cfg.score_decades)
        score = np.where(learning, 0.0, raw)
        # episode
        hold = b.hold[r]
        held = hold > 0
        dec = held & ((not cfg.hold_open) | (score < cfg.alert_score / 2.0))
        hold = hold - dec
        damp = np.maximum(0.0, 1.0 - HOLD_DEPTH * (hold + 1) / (cfg.hold + 1))
        reported = np.where(held, score * damp, score)
        alert = ~held & (score >= cfg.alert_score)
        b.hold[r] = np.where(alert, cfg.hold, hold)
        since = b.since[r]
        since = np.where(
            score >= cfg.alert_score,
            np.where(np.isnan(since), at, since),
            np.where(score < cfg.alert_score / 2.0, math.nan, since),
        )
        b.since[r] = since
        expected[old], low[old], high[old] = exp_best, exp_best - width, exp_best + width
        p_out[old], score_out[old], alert_out[old] = p, reported, alert
        since_out[old], note[old] = since, notes
        return Scores(expected, low, high, p_out, score_out, alert_out, since_out, note)

    def _learn(
        self,
        b: Block,
        r: vector.I,
        v: vector.F,
        n: vector.I,
        at: float,
        slot: int,
        zs: vector.F,
    ) -> None:
        cfg = self.config
        for view in range(self.views):
            z = zs[:, view]
            ok = ~np.isnan(z) & (n >= FIRST_ERRORS)
            if ok.any():
                ro, zo = r[ok], z[ok]
                bins = np.clip(np.searchsorted(vector.EDGES, zo, side="right") - 1, 0, None)
                b.hists[ro, view, bins] += b.gains[ro, view]
                gains = b.gains[ro, view] / (1.0 - cfg.tail_rate)
                big = gains > 1e150
                if big.any():
                    b.hists[ro[big], view] /= gains[big][:, None]
                    gains[big] = 1.0
                b.gains[ro, view] = gains
        levels, slevel = b.levels[r], b.slevel[r]
        errors = np.concatenate(
            [np.abs(v[:, None] - levels), np.abs(v - slevel - b.season[r, slot])[:, None]], axis=1
        )
        nf = n.astype(np.float64)
        rate = np.maximum(cfg.error_rate, 1.0 / nf)[:, None]
        trate = np.maximum(cfg.select_rate, 1.0 / nf)[:, None]
        maes, track = b.maes[r], b.track[r]
        cap = np.where((n > 10)[:, None], 5.0 * np.maximum(maes, 1e-12), errors)
        capped = np.minimum(errors, cap)
        b.maes[r] = maes + rate * (capped - maes)
        b.track[r] = track + trate * (capped - track)
        b.levels[r] = levels + np.array(cfg.level_rates)[None, :] * (v[:, None] - levels)
        # season
        twin = slot % 24
        if twin != slot:
            copy = (b.season_n[r, slot] == 0) & (b.season_n[r, twin] > 0)
            if copy.any():
                b.season[r[copy], slot] = b.season[r[copy], twin]
                b.season_n[r[copy], slot] = 1
        first = b.season_n[r, slot] == 0
        s_slot = b.season[r, slot]
        new_slevel = slevel + cfg.season_level_rate * ((v - s_slot) - slevel)
        learnt = s_slot + cfg.season_rate * (v - new_slevel - s_slot)
        b.season[r, slot] = np.where(first, v - slevel, learnt)
        b.slevel[r] = np.where(first, slevel, new_slevel)
        b.season_n[r, slot] += 1
        # track
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
