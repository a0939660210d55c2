"""The streaming engine's one parameter set (frozen, validated), shared by every series.

NAB's rule and soc's need are the same: one set of parameters for all series, so nothing here
depends on a series' name, scale or length. Must not hold per-series state (see ``state.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from soc.errors import AnomalyError


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How fast each part of the engine learns and forgets; defaults are the measured ones.

    Rates are per observation. ``score_decades`` maps a tail probability ``p`` to the score
    ``-log10(p) / score_decades`` (capped at 1), so a score is a probability on a log scale,
    comparable across series: with 9, score 0.53 is ``p = 10^-4.77`` (about 1.7e-5).
    """

    level_rates: tuple[float, ...] = (0.05,)
    """Smoothing of each plain view's level: a fast one (a level shift is a few large errors,
    then absorbed) and a slow one (a drift away from the longer-run level)."""
    season_level_rate: float = 0.03
    """Smoothing of the seasonal view's deseasonalised level."""
    season_rate: float = 0.05
    """Smoothing of each seasonal slot (hour of day x working day or not)."""
    error_rate: float = 0.01
    """Smoothing of each predictor's mean absolute error (its noise scale)."""
    select_rate: float = 0.001
    """Smoothing of each view's track record (mean absolute error) that picks the judging view."""
    competent: float = 1.0
    """A view whose track record is within this factor of the best view's must agree."""
    tail_rate: float = 0.002
    """Forgetting of the distribution of past errors (the calibration); ~1/500 observations."""
    tail_prior: float = 20.0
    """Pseudo-observations of the prior error distribution a new series starts from."""
    tail_quantile: float = 0.03
    """Share of the error distribution fitted by an exponential tail beyond its quantile."""
    window: int = 6
    """Observations combined (Fisher's method) to see a sustained, moderate change."""
    warmup: int = 30
    """Observations a new series learns from before it may alert."""
    season_min_days: float = 1.0
    """History needed before the seasonal predictor may be chosen."""
    gap_steps: float = 4.0
    """A silence longer than this many usual intervals is a collection gap, not data."""
    rewarm: int = 3
    """Observations after a gap, restart or boundary that relearn the level without alerting."""
    hold: int = 100
    """Observations after an alert whose reported score is damped (one alert per episode)."""
    hold_open: bool = True
    """The hold counts down only once the episode has calmed (score below half the alert line)."""
    score_decades: float = 9.0
    """``-log10(p)`` that maps to score 1."""
    alert_score: float = 0.53
    """Score at and above which a point is an alert (one threshold for every series)."""
    extreme_margin: float | None = 0.05
    """A value beyond the whole range seen so far by more than this share of it is a *new
    extreme*, scored at least at the alert line whatever the noise scale says (Numenta HTM's
    "spatial anomaly", its tolerance 5 %); ``None``: no such rule."""
    extreme_after: int = 200
    """Observations before the range seen is taken as the series' range: the extremes of its
    first few dozen values are not yet a range, and noise breaks them often."""
    extreme_share: float = 0.25
    """A new extreme is raised to the alert line only if its own score reaches this share of
    the line (p below ~0.06 at the default line): the views must find it at least mildly
    surprising, so after a gap, whose levels restart from the new value, a new level is not
    called a new extreme."""

    @property
    def views(self) -> int:
        """Predictors an observation is judged by: each plain level view and the seasonal one."""
        return len(self.level_rates) + 1

    @property
    def alert_p(self) -> float:
        """The tail probability of :attr:`alert_score`: an alert's p-value is at most this."""
        return float(10.0 ** (-self.alert_score * self.score_decades))

    def __post_init__(self) -> None:
        for name in (
            "season_level_rate",
            "season_rate",
            "error_rate",
            "tail_rate",
            "tail_quantile",
        ):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise AnomalyError(f"engine setting {name}={value}: must be in (0, 1)")
        if not self.level_rates or not all(0.0 < r < 1.0 for r in self.level_rates):
            raise AnomalyError(f"engine setting level_rates={self.level_rates}: each in (0, 1)")
        if self.window < 1 or self.warmup < 0 or self.rewarm < 0 or self.hold < 0:
            raise AnomalyError("engine settings window >= 1, warmup, rewarm and hold >= 0")
        if self.gap_steps <= 1.0 or self.score_decades <= 0.0:
            raise AnomalyError("engine settings gap_steps > 1 and score_decades > 0")
        if self.extreme_margin is not None and self.extreme_margin < 0.0:
            raise AnomalyError(f"engine setting extreme_margin={self.extreme_margin}: >= 0")
        if self.extreme_after < 0:
            raise AnomalyError(f"engine setting extreme_after={self.extreme_after}: >= 0")
        if not 0.0 <= self.extreme_share <= 1.0:
            raise AnomalyError(f"engine setting extreme_share={self.extreme_share}: in [0, 1]")
        if not 0.0 < self.alert_score <= 1.0:
            raise AnomalyError(f"engine setting alert_score={self.alert_score}: in (0, 1]")


LIVE = EngineConfig(
    alert_score=7.0 / 9.0,
    season_level_rate=0.0005,
    tail_rate=0.001,
    hold=150,
    hold_open=False,
    season_rate=0.1,
    extreme_margin=None,
)
"""Parameters for live five-minute buckets of thousands of series (``bank.py``; not wired yet).

The alert line is ``p = 1e-7`` (the live model's ``SOC_ANOMALY_ALPHA``), not score-csv's
``10^-4.77``: over 26,000 series and 288 buckets a day, 1.7e-5 would be hundreds of false alerts a
day. The seasonal view's level moves slowly (about a week of memory), so the weekly rhythm
(working days against weekends and holidays) lives in the slots rather than in the level.
No new-extreme rule (``extreme_margin=None``): over 26,000 series, the records of noise
(~3-sigma excursions beyond all before them) would be false alerts every day.
``hold``, ``hold_open`` and ``season_rate`` stay those the live model was measured with (150
buckets: one alert per 12.5 hours' episode), not score-csv's NAB-tuned ones. Known limit: in the
first weeks the plain level view, good on flat stretches, often judges, and a Monday morning
after a quiet weekend can look like a surge to it.
"""
