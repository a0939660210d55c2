"""A pooled model of expected volume: one gradient-boosted Poisson model for every commune series.

Per-series baselines guess a quiet commune's hour from its own few events: at under one event an
hour, a slot of the week seen twice is mostly zeros. This model is one scikit-learn
``HistGradientBoostingRegressor(loss="poisson")`` fitted on the hourly counts of all (commune,
service) series together, so a quiet commune borrows the shape of its day and week, and the
level of communes like it, from thousands of others. Features of the hour starting at ``t`` of
one series:

- hour of week and hour of day (local time, Asia/Ho_Chi_Minh), a rest-day flag (weekend or
  public holiday) and a holiday flag (Vietnam's calendar from the ``holidays`` package, Tết and
  the Hùng Kings' day included: ``stream.season.VIETNAM``);
- the service (categorical), the locality's size: its division type (urban ward, rural commune,
  special zone; categorical), whether its province is a centrally-run city, and the number of
  communes of its province (the catalogue has no populations);
- the series' own recent level: its mean hourly count over the ``LEVEL_HOURS`` hours before
  ``t`` (missing, which the trees handle natively, when less than ``MIN_LEVEL_HOURS`` are known).

Causal by construction: the features of hour ``t`` use counts before ``t`` only, and a model is
fitted on hours before the period it predicts. Retrain schedule: weekly, on the previous
``TRAIN_WEEKS`` weeks of history; the level feature moves every hour (:func:`own_levels`).

Pure computation on numpy arrays: no Elasticsearch, no files. The bench that decides whether it
earns a place in the live path is ``bench/pooled_volume.py`` (``bench/reports/pooled-volume.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from detectors.anomaly.stream.season import VIETNAM, Calendar
from soc.errors import AnomalyError

HOUR = timedelta(hours=1)
LEVEL_HOURS = 168
"""The own-level feature: mean hourly count over the trailing week."""
MIN_LEVEL_HOURS = 24
"""Hours of history before the own level is given to the model (missing before)."""
TRAIN_WEEKS = 2
"""Weeks of history a weekly retrain fits on."""
THREADS = 1
"""OpenMP threads of a fit or prediction. One: on a machine whose cores are shared (Elasticsearch,
the API, the detectors), OpenMP threads spin-wait for each other; measured on the 2-core dev box
under load, a small fit took 43 s with the default threads and 2 s with one."""
CHUNK_ROWS = 500_000
"""Rows predicted in one call (one call per hour would pay the call's overhead each time)."""
DIVISIONS = ("phuong", "xa", "dac_khu")
FEATURES = (
    "hour_of_week",
    "hour_of_day",
    "rest_day",
    "holiday",
    "service",
    "division",
    "city",
    "province_communes",
    "own_level",
)
_CATEGORICAL = [name in ("service", "division") for name in FEATURES]


@dataclass(frozen=True, slots=True)
class SeriesMeta:
    """What the model knows of a series besides its counts: the service and the locality's size."""

    service: str
    division: str
    """The ward's division type (``phuong``, ``xa``, ``dac_khu``)."""
    city: bool
    """Its province is a centrally-run city."""
    province_communes: int


def time_features(
    start: datetime, hours: int, calendar: Calendar = VIETNAM
) -> dict[str, np.ndarray]:
    """Hour of week, hour of day, rest day and holiday flags of ``hours`` hours from ``start``."""
    if start.tzinfo is None:
        raise AnomalyError("pooled model: times must be timezone-aware")
    base = start.astimezone(UTC).timestamp()
    how = np.empty(hours, np.int16)
    hod = np.empty(hours, np.int16)
    rest = np.empty(hours, np.int8)
    holiday = np.empty(hours, np.int8)
    for i in range(hours):
        local = calendar.local(base + 3600.0 * i)
        day = local.date()
        how[i] = local.weekday() * 24 + local.hour
        hod[i] = local.hour
        rest[i] = calendar.rest_day(day)
        holiday[i] = calendar.rest_day(day) and day.weekday() < 5
    return {"hour_of_week": how, "hour_of_day": hod, "rest_day": rest, "holiday": holiday}


def own_levels(counts: np.ndarray) -> np.ndarray:
    """Causal own level of each series at each hour: the mean count of the ``LEVEL_HOURS`` hours
    before it (fewer at the start; NaN with less than ``MIN_LEVEL_HOURS`` hours known).

    ``counts`` is (series, hours); column ``h`` of the result uses columns ``< h`` only.
    """
    series, hours = counts.shape
    cum = np.zeros((series, hours + 1), np.float64)
    np.cumsum(counts, axis=1, out=cum[:, 1:])
    ends = np.arange(hours)
    starts = np.maximum(0, ends - LEVEL_HOURS)
    known = (ends - starts).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        level = (cum[:, ends] - cum[:, starts]) / known
    level[:, known < MIN_LEVEL_HOURS] = np.nan
    return level


def _static(metas: Sequence[SeriesMeta], services: Sequence[str]) -> np.ndarray:
    """(series, 4) codes: service, division, city, province communes."""
    out = np.empty((len(metas), 4), np.float64)
    for i, m in enumerate(metas):
        if m.service not in services:
            raise AnomalyError(f"pooled model: service {m.service!r} unknown to the model")
        division = DIVISIONS.index(m.division) if m.division in DIVISIONS else len(DIVISIONS)
        out[i] = (services.index(m.service), division, float(m.city), m.province_communes)
    return out


def design(
    static: np.ndarray, times: dict[str, np.ndarray], level: np.ndarray, hour: int
) -> np.ndarray:
    """Feature rows of every series for one hour (index ``hour`` into ``times``/``level``)."""
    n = static.shape[0]
    x = np.empty((n, len(FEATURES)), np.float64)
    for j, name in enumerate(("hour_of_week", "hour_of_day", "rest_day", "holiday")):
        x[:, j] = times[name][hour]
    x[:, 4:8] = static
    x[:, 8] = np.log1p(level[:, hour])
    return x


@dataclass(slots=True)
class PooledVolume:
    """The fitted model, the services it knows and the end of the history it was fitted on."""

    model: HistGradientBoostingRegressor
    services: tuple[str, ...]
    trained_until: datetime

    @classmethod
    def fit(
        cls,
        counts: np.ndarray,
        start: datetime,
        metas: Sequence[SeriesMeta],
        *,
        max_rows: int = 1_500_000,
        seed: int = 0,
        calendar: Calendar = VIETNAM,
    ) -> PooledVolume:
        """Fit on hourly ``counts`` (series, hours) starting at ``start``.

        Hours without an own level (the first ``MIN_LEVEL_HOURS``) are not training rows; at most
        ``max_rows`` (series, hour) rows are drawn at random (the fit is then ~1 min on 2 cores).
        """
        if counts.ndim != 2 or counts.shape[0] != len(metas):
            raise AnomalyError("pooled model: counts must be (series, hours), one row per meta")
        services = tuple(sorted({m.service for m in metas}))
        static = _static(metas, services)
        times = time_features(start, counts.shape[1], calendar)
        level = own_levels(counts)
        hours = np.arange(MIN_LEVEL_HOURS, counts.shape[1])
        if hours.size == 0:
            raise AnomalyError(f"pooled model: needs more than {MIN_LEVEL_HOURS} hours of history")
        rng = np.random.default_rng(seed)
        total = counts.shape[0] * hours.size
        pick = rng.choice(total, size=min(max_rows, total), replace=False)
        rows, cols = pick // hours.size, hours[pick % hours.size]
        x = np.empty((pick.size, len(FEATURES)), np.float64)
        for j, name in enumerate(("hour_of_week", "hour_of_day", "rest_day", "holiday")):
            x[:, j] = times[name][cols]
        x[:, 4:8] = static[rows]
        x[:, 8] = np.log1p(level[rows, cols])
        model = HistGradientBoostingRegressor(
            loss="poisson",
            max_iter=300,
            learning_rate=0.1,
            max_leaf_nodes=31,
            min_samples_leaf=200,
            categorical_features=_CATEGORICAL,
            early_stopping=True,
            validation_fraction=0.1,
            random_state=seed,
        )
        with threadpool_limits(limits=THREADS):
            model.fit(x, counts[rows, cols].astype(np.float64))
        return cls(model, services, start + counts.shape[1] * HOUR)

    def expected(
        self,
        metas: Sequence[SeriesMeta],
        history: np.ndarray,
        start: datetime,
        *,
        from_hour: int = 0,
        calendar: Calendar = VIETNAM,
    ) -> np.ndarray:
        """Expected counts (series, hours - from_hour) of the hours of ``history`` (hourly counts
        from ``start``) from column ``from_hour`` on: hour ``h`` is predicted from the columns
        before ``h`` only. Predicting an hour the model was fitted on is refused (not causal)."""
        first = start + from_hour * HOUR
        if first < self.trained_until:
            raise AnomalyError(
                f"pooled model fitted on history up to {self.trained_until.isoformat()}: "
                f"cannot predict from {first.isoformat()} causally"
            )
        static = _static(metas, self.services)
        times = time_features(start, history.shape[1], calendar)
        level = own_levels(history)
        n = history.shape[0]
        out = np.empty((n, history.shape[1] - from_hour), np.float64)
        step = max(1, CHUNK_ROWS // max(n, 1))
        for first_h in range(from_hour, history.shape[1], step):
            hours = range(first_h, min(first_h + step, history.shape[1]))
            x = np.vstack([design(static, times, level, h) for h in hours])
            with threadpool_limits(limits=THREADS):
                pred = self.model.predict(x).reshape(len(hours), n)
            out[:, first_h - from_hour : first_h - from_hour + len(hours)] = pred.T
        return out

    def expected_now(
        self, static: np.ndarray, at: datetime, level: np.ndarray, calendar: Calendar = VIETNAM
    ) -> np.ndarray:
        """Expected count of every series in the hour starting at ``at`` (one live bucket's
        prediction: a 5-minute bucket expects a twelfth), given each series' own level."""
        times = time_features(at, 1, calendar)
        with threadpool_limits(limits=THREADS):
            return np.asarray(self.model.predict(design(static, times, level[:, None], 0)))

    def static(self, metas: Sequence[SeriesMeta]) -> np.ndarray:
        """The per-series codes :meth:`expected_now` takes (computed once, not per bucket)."""
        return _static(metas, self.services)
