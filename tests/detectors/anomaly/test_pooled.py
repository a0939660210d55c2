"""The pooled expected-volume model: it trains, predicts causally, and a quiet commune borrows
strength from communes like it (its expectation is closer to its known rate than its own few
events give). Counts are drawn from known Poisson rates, so the truth is known exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from detectors.anomaly.pooled import MIN_LEVEL_HOURS, PooledVolume, SeriesMeta, time_features
from soc.errors import AnomalyError

START = datetime(2026, 11, 1, 17, tzinfo=UTC)  # Monday 2 November, 00:00 in Vietnam
WEEK = 168


def _world(seed: int = 3) -> tuple[list[SeriesMeta], np.ndarray, np.ndarray]:
    """300 series over three weeks: rates are size x a service's daily shape."""
    rng = np.random.default_rng(seed)
    hod = time_features(START, 3 * WEEK)["hour_of_day"]
    rest = time_features(START, 3 * WEEK)["rest_day"]
    day = np.where((hod >= 8) & (hod < 17), 1.0, 0.1) * np.where(rest == 1, 0.3, 1.0)
    metas, rates = [], []
    for i in range(300):
        division = ("phuong", "xa", "dac_khu")[i % 3]
        service = ("vneid", "web-portal")[(i // 3) % 2]
        size = {"phuong": 3.0, "xa": 1.0, "dac_khu": 0.7}[division]
        peak = size * (0.6 if service == "vneid" else 1.2) * rng.lognormal(-0.02, 0.2)
        metas.append(SeriesMeta(service, division, False, 100))
        rates.append(peak * day)
    rate = np.array(rates)
    return metas, rate, rng.poisson(rate)


def test_quiet_commune_borrows_strength_and_predictions_are_causal() -> None:
    metas, rate, counts = _world()
    model = PooledVolume.fit(counts[:, : 2 * WEEK], START, metas, max_rows=60_000)
    week3 = START + 2 * WEEK * timedelta(hours=1)
    assert model.trained_until == week3

    # Causal: the hours it was fitted on are refused; an hour's prediction ignores later counts.
    with pytest.raises(AnomalyError, match="causally"):
        model.expected(metas, counts, START, from_hour=2 * WEEK - 1)
    expected = model.expected(metas, counts, START, from_hour=2 * WEEK)
    changed = counts.copy()
    changed[:, 2 * WEEK + 50 :] *= 10
    again = model.expected(metas, changed, START, from_hour=2 * WEEK)
    assert np.array_equal(expected[:, :51], again[:, :51])
    assert not np.array_equal(expected[:, 60:], again[:, 60:])

    # Quiet series (under one event an hour): the pooled expectation of the held-out week is
    # closer to the true rate than each series' own hour-of-week mean over its two weeks.
    truth = rate[:, 2 * WEEK :]
    quiet = rate.mean(axis=1) < 1.0
    assert quiet.sum() >= 50
    own = (counts[:, :WEEK] + counts[:, WEEK : 2 * WEEK]) / 2.0
    pooled_error = np.abs(expected - truth)[quiet].mean()
    own_error = np.abs(own - truth)[quiet].mean()
    assert pooled_error < 0.6 * own_error, (pooled_error, own_error)


def test_bad_input_is_a_clear_error() -> None:
    metas, _, counts = _world()
    with pytest.raises(AnomalyError, match="one row per meta"):
        PooledVolume.fit(counts[:10], START, metas)
    with pytest.raises(AnomalyError, match="more than"):
        PooledVolume.fit(counts[:, :MIN_LEVEL_HOURS], START, metas)
    with pytest.raises(AnomalyError, match="timezone"):
        time_features(START.replace(tzinfo=None), 3)
