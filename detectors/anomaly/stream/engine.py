"""The streaming anomaly engine: one observation in, one calibrated verdict out, per series.

For each series, causally (the verdict at time t uses observations up to t only):

1. two predictors of the next value: a fast-smoothed *level* (a level shift is a few large
   errors, then absorbed) and a Holt-Winters-like *seasonal* one (level + the offset of the slot,
   hour of day on a working or a rest day); the one with the smaller running error is used, the
   seasonal one only after ``season_min_days`` of history;
2. the error, standardised by that predictor's running mean absolute error, floored by the
   series' resolution (``quantum``: 1 for counts, so a zero-heavy series is not divided by ~0)
   and by a thousandth of the range seen;
3. its tail probability under the series' own past errors (``tails.py``: a forgotten histogram
   with an exponential tail), and Fisher's combination of the last ``window`` of them (a
   sustained, moderate change); ``p`` is the smaller of the two, doubled (Bonferroni);
4. the score ``-log10(p) / score_decades``: the same scale for every series, one threshold.

A silence longer than ``gap_steps`` usual intervals is a collection gap (or a restart, or the
boundary between history and live data): the next ``rewarm`` observations relearn the level and
never alert. Must not do I/O; a state is changed only here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special

from detectors.anomaly.stream import season, tails
from detectors.anomaly.stream.config import EngineConfig
from detectors.anomaly.stream.state import SeriesState

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
    """What the engine says of one observation."""

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
    """Scores observations of any number of series with one parameter set."""

    def __init__(
        self, config: EngineConfig | None = None, calendar: season.Calendar = season.PLAIN
    ) -> None:
        self.config = config or EngineConfig()
        self.calendar = calendar
        self.views = self.config.views
        self._alert_p = self.config.alert_p

    def new_state(self) -> SeriesState:
        return SeriesState.new(self.views, self.config.tail_prior)

    def observe(self, state: SeriesState, at: float, value: float) -> Verdict:
        """Score ``value`` observed at ``at`` (epoch seconds), then learn from it."""
        cfg = self.config
        slot = self.calendar.slot(at)
        if state.n == 0:
            self._start(state, at, value, slot)
            return Verdict(at, value, value, value, value, 1.0, 0.0, False, None, "learning")
        note = ""
        if state.step > 0.0 and at - state.last_t > cfg.gap_steps * state.step:
            self._relearn(state, value, slot)
            note = "gap"
        predictions = self._predict(state, slot)
        floor = self._floor(state)
        zs = [abs(value - expected) / max(NORMAL_MAE * mae, floor) for expected, mae in predictions]
        ready = [v for v, (expected, _) in enumerate(predictions) if not math.isnan(expected)]
        ps = {v: self._view_p(state, v, zs[v]) for v in ready}
        # The view that has erred least recently judges: a daily jump the seasonal view expects
        # is not an anomaly because the plain level did not see it coming.
        best = min(ready, key=lambda v: state.track[v])
        expected, mae = predictions[best]
        # Every view with a track record close to the best one's must be surprised too.
        p = max(ps[v] for v in ready if state.track[v] <= cfg.competent * state.track[best])
        if state.counts:
            p = max(p, _count_tail(value, expected))
        scale = max(NORMAL_MAE * mae, floor)
        band = tails.inverse(state.hists[best], self._alert_p, cfg.tail_quantile, state.fits[best])
        width = band * scale
        learning = state.n < cfg.warmup or state.quiet > 0
        if learning and not note:
            note = "learning" if state.n < cfg.warmup else "relearning"
        self._learn(state, at, value, slot, zs)
        score = 0.0 if learning else min(1.0, -math.log10(max(p, 1e-300)) / cfg.score_decades)
        return self._episode(state, at, value, expected, width, p, score, note)

    def _view_p(self, state: SeriesState, view: int, z: float) -> float:
        """The view's tail probability of this error, or of its recent errors together."""
        cfg = self.config
        if state.n % REFIT == 0 or not state.fits[view]:
            state.fits[view] = tails.fit(state.hists[view], cfg.tail_quantile)
        p_point = tails.tail(state.hists[view], z, cfg.tail_quantile, state.fits[view])
        recent = state.recents[view]
        recent.append(p_point)
        del recent[: -cfg.window]
        if len(recent) < 2:
            return p_point
        return min(1.0, 2.0 * min(p_point, tails.fisher(recent)))

    def _episode(
        self,
        state: SeriesState,
        at: float,
        value: float,
        expected: float,
        width: float,
        p: float,
        score: float,
        note: str,
    ) -> Verdict:
        """Open, continue or close the episode; damp the reported score during a hold."""
        cfg = self.config
        alert = False
        reported = score
        if state.hold > 0:
            # One alert per episode: after it, scores come back gradually over ``hold``
            # observations, so the rest of the episode does not alert again and again. With
            # ``hold_open``, the countdown waits while the episode is still open (score at or
            # above half the alert line): a long disturbance is one episode, not one per hold.
            if not cfg.hold_open or score < cfg.alert_score / 2.0:
                state.hold -= 1
            reported = score * max(0.0, 1.0 - HOLD_DEPTH * (state.hold + 1) / (cfg.hold + 1))
        elif score >= cfg.alert_score:
            alert = True
            state.hold = cfg.hold
        if score >= cfg.alert_score:
            state.since = state.since if state.since is not None else at
        elif score < cfg.alert_score / 2.0:
            state.since = None
        low, high = expected - width, expected + width
        return Verdict(at, value, expected, low, high, p, reported, alert, state.since, note)

    def _start(self, state: SeriesState, at: float, value: float, slot: int) -> None:
        state.n = 1
        state.first_t = state.last_t = at
        state.last_x = state.slevel = state.lo = state.hi = value
        state.levels = [value] * len(state.levels)
        state.counts = bool(value >= 0.0 and value == int(value))

    def _relearn(self, state: SeriesState, value: float, slot: int) -> None:
        """After a gap: the old level is stale, the noise and the season still hold."""
        state.levels = [value] * len(state.levels)
        state.slevel = value - state.season[slot]
        for recent in state.recents:
            recent.clear()
        state.quiet = self.config.rewarm
        state.since = None

    def _predict(self, state: SeriesState, slot: int) -> list[tuple[float, float]]:
        """(expected value, mean absolute error) of each view; NaN for a view not ready."""
        out = [(level, mae) for level, mae in zip(state.levels, state.maes, strict=False)]
        days = (state.last_t - state.first_t) / 86400.0
        if state.season_n[slot] < 2 and state.season_n[slot % 24] >= 2:
            slot = slot % 24  # a rest day's hour not learnt yet: the working day's
        ready = days >= self.config.season_min_days and state.season_n[slot] >= 2
        seasonal = state.slevel + state.season[slot] if ready else math.nan
        out.append((seasonal, state.maes[-1]))
        return out

    def _floor(self, state: SeriesState) -> float:
        """Smallest noise scale: half the resolution, a thousandth of the range seen."""
        return max(
            0.5 * state.quantum if math.isfinite(state.quantum) else 0.0,
            1e-3 * (state.hi - state.lo),
            1e-9 * abs(state.last_x),
            1e-12,
        )

    def _learn(
        self, state: SeriesState, at: float, value: float, slot: int, zs: list[float]
    ) -> None:
        cfg = self.config
        for view, z in enumerate(zs):
            # The first errors, against a noise scale learnt from a handful of values, say
            # nothing about the series' tail: they would haunt it for hundreds of observations.
            if not math.isnan(z) and state.n >= FIRST_ERRORS:
                state.gains[view] = tails.add(
                    state.hists[view], state.gains[view], z, cfg.tail_rate
                )
        errors = [abs(value - level) for level in state.levels]
        errors.append(abs(value - state.slevel - state.season[slot]))
        # A running mean until the rate's own memory is filled: a noise scale taken from the
        # first error or two would make every later error look huge.
        r = max(cfg.error_rate, 1.0 / state.n)
        t = max(cfg.select_rate, 1.0 / state.n)
        for view, err in enumerate(errors):
            cap = 5.0 * max(state.maes[view], 1e-12) if state.n > 10 else err
            state.maes[view] += r * (min(err, cap) - state.maes[view])
            state.track[view] += t * (min(err, cap) - state.track[view])
        for i, rate in enumerate(cfg.level_rates):
            state.levels[i] += rate * (value - state.levels[i])
        self._learn_season(state, value, slot)
        self._track(state, at, value)

    def _learn_season(self, state: SeriesState, value: float, slot: int) -> None:
        """Holt-Winters-like: the level moves with what the slot's offset does not explain,
        and the slot's offset moves with what the level does not."""
        cfg = self.config
        twin = slot % 24
        if state.season_n[slot] == 0 and twin != slot and state.season_n[twin] > 0:
            # A rest day's hour starts from the working day's (no weekly pattern assumed yet).
            state.season[slot] = state.season[twin]
            state.season_n[slot] = 1
        if state.season_n[slot] == 0:
            state.season[slot] = value - state.slevel
        else:
            deseasoned = value - state.season[slot]
            state.slevel += cfg.season_level_rate * (deseasoned - state.slevel)
            state.season[slot] += cfg.season_rate * (value - state.slevel - state.season[slot])
        state.season_n[slot] += 1

    def _track(self, state: SeriesState, at: float, value: float) -> None:
        """Interval, range and resolution of the series; the relearning countdown."""
        dt = at - state.last_t
        if dt > 0.0:
            bounded = min(dt, 2.0 * state.step) if state.step > 0.0 else dt
            state.step = bounded if state.step == 0.0 else state.step + 0.1 * (bounded - state.step)
        state.counts = bool(state.counts and value >= 0.0 and value == int(value))
        change = abs(value - state.last_x)
        if change > 0.0:
            state.quantum = min(state.quantum, change)
        state.lo, state.hi = min(state.lo, value), max(state.hi, value)
        state.n += 1
        state.quiet = max(0, state.quiet - 1)
        state.last_t, state.last_x = max(state.last_t, at), value


def _count_tail(value: float, expected: float) -> float:
    """Poisson tail of a count against its expected value: a floor under a count's p-value.

    The error histogram of a mostly-zero series knows a few 1s; its fitted tail would call the
    first 2 a one-in-a-million event, which for a Poisson mean of 0.1 it is not (p = 0.005).
    """
    mean = max(expected, 1e-3)
    if value >= mean:
        return float(special.gammainc(value, mean)) if value >= 1.0 else 1.0
    return float(special.gammaincc(value + 1.0, mean))
