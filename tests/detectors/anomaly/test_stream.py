"""The streaming engine: what a series does every day raises nothing, a change raises one alert.

Pure unit tests on synthetic series (five-minute steps unless said), no I/O. Each series is run
through the one engine (a row of its block); ``test_stream_bank.py`` runs many rows together.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, date, datetime

import numpy as np
import pytest

from detectors.anomaly.stream import NOTES, PLAIN, VIETNAM, Block, Engine, EngineConfig, Verdict
from detectors.anomaly.stream.config import LIVE
from soc.errors import AnomalyError

T0 = datetime(2026, 11, 2, tzinfo=UTC).timestamp()  # a Monday
NO_RECORDS = EngineConfig(extreme_margin=None)
"""score-csv's parameters without the new-extreme rule, as the live ones (``LIVE``) are: in
noise, a record is a ~3-sigma excursion, and that rule (on for score-csv) raises it."""
STEP = 300.0
DAY = 288


def run(values: Iterable[float], engine: Engine | None = None, start: float = T0) -> list[Verdict]:
    """One series, one value every ``STEP`` from ``start``: the engine's verdict on each."""
    engine = engine or Engine()
    x = np.array(list(values), dtype=float)
    at = start + STEP * np.arange(x.shape[0])
    got = engine.replay([at], [x])
    return [
        Verdict(
            float(at[i]),
            float(x[i]),
            float(got.expected[0, i]),
            float(got.low[0, i]),
            float(got.high[0, i]),
            float(got.p[0, i]),
            float(got.score[0, i]),
            bool(got.alert[0, i]),
            None if math.isnan(got.since[0, i]) else float(got.since[0, i]),
            NOTES[got.note[0, i]],
        )
        for i in range(x.shape[0])
    ]


def alerts(verdicts: list[Verdict], after: int = 0) -> list[int]:
    return [i for i, v in enumerate(verdicts) if v.alert and i >= after]


def test_zero_heavy_counts_alert_on_a_burst_only() -> None:
    rng = np.random.default_rng(1)
    counts = rng.poisson(0.2, 3 * DAY).astype(float)
    counts[700] = 15.0
    verdicts = run(counts)
    assert alerts(verdicts, after=50) == [700]
    assert max(v.score for v in verdicts[50:700]) < 0.5  # lone 1s and 2s are ordinary


def test_level_shift_alerts_on_the_change_then_adapts() -> None:
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.normal(100, 5, 1000), rng.normal(150, 5, 800)])
    verdicts = run(values, Engine(NO_RECORDS))
    assert alerts(verdicts, after=50) == [1000]
    late = verdicts[1400:]
    assert max(v.score for v in late) < 0.5
    assert late[-1].low < 150 < late[-1].high


def test_gap_restart_and_boundary_raise_nothing() -> None:
    rng = np.random.default_rng(3)
    engine = Engine()
    block = engine.new_block()
    [row] = engine.add(block, 1)
    rows = np.array([row])
    for i, v in enumerate(rng.normal(50, 2, 600)):
        engine.observe(block, rows, T0 + i * STEP, np.array([v]))
    # six hours without data (a collector down, a restart, history then live), then a new level
    resume = T0 + 600 * STEP + 6 * 3600
    live = rng.normal(80, 2, 300)
    after = [
        engine.observe(block, rows, resume + i * STEP, np.array([v])) for i, v in enumerate(live)
    ]
    assert NOTES[after[0].note[0]] == "gap"
    assert not any(a.alert[0] for a in after)
    assert after[-1].low[0] < 80 < after[-1].high[0]


def test_series_side_by_side_score_as_each_alone() -> None:
    rng = np.random.default_rng(9)
    shift = np.concatenate([rng.normal(100, 5, 700), rng.normal(150, 5, 300)])
    counts = rng.poisson(3.0, 600).astype(float)
    counts[500] = 40.0
    engine = Engine()
    # other lengths, starts and steps (five-minute against hourly), in one block
    times = [T0 + STEP * np.arange(1000), T0 + 7 * 3600 + 3600 * np.arange(600)]
    together = engine.replay(times, [shift, counts])
    for i, (at, x) in enumerate(zip(times, [shift, counts], strict=True)):
        alone = engine.replay([at], [x])
        assert np.array_equal(together.score[i, : len(x)], alone.score[0])
        assert np.array_equal(together.alert[i, : len(x)], alone.alert[0])
    assert not together.score[0, 1000:].any()  # past its end
    assert 700 in np.flatnonzero(together.alert[0])
    assert 500 in np.flatnonzero(together.alert[1])


def test_daily_season_is_learnt_and_a_value_out_of_its_hour_alerts() -> None:
    rng = np.random.default_rng(4)
    n = 12 * DAY
    hours = (np.arange(n) * STEP / 3600.0) % 24
    values = 100 + 80 * np.sin(2 * math.pi * (hours - 6) / 24) + rng.normal(0, 3, n)
    midnight = 10 * DAY + 12  # 01:00 of day 10, where ~25 is expected
    values[midnight] = 180.0  # a noon value at night
    verdicts = run(values)
    assert alerts(verdicts, after=3 * DAY) == [midnight]


def test_trend_is_followed_not_flagged() -> None:
    rng = np.random.default_rng(5)
    values = np.linspace(100, 300, 3000) + rng.normal(0, 4, 3000)
    assert not alerts(run(values, Engine(NO_RECORDS)), after=50)


def test_scores_do_not_depend_on_the_unit() -> None:
    rng = np.random.default_rng(6)
    base = rng.normal(10, 1, 1200)
    base[900] = 25.0
    small = [v.score for v in run(base)]
    large = [v.score for v in run(base * 1e6)]
    assert small == pytest.approx(large, abs=1e-6)
    assert small[900] >= 0.5


def test_checkpoint_round_trip_continues_exactly() -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(20, 3, (900, 2))
    engine = Engine()
    whole = engine.new_block()
    rows = engine.add(whole, 2)
    for i in range(500):
        engine.observe(whole, rows, T0 + i * STEP, values[i])
    restored = Block.from_bytes(whole.to_bytes())
    for i in range(500, 900):
        a = engine.observe(whole, rows, T0 + i * STEP, values[i])
        b = engine.observe(restored, rows, T0 + i * STEP, values[i])
        assert np.array_equal(a.score, b.score)
        assert np.array_equal(a.high, b.high)
    assert whole.to_bytes() == restored.to_bytes()


def test_a_checkpoint_of_other_sizes_is_refused() -> None:
    narrow = Block.empty(views=2, window=6, capacity=1)
    narrow.add(1, 20.0)
    narrow.hists = narrow.hists[:, :, :5]
    with pytest.raises(AnomalyError, match="sizes"):
        Block.from_bytes(narrow.to_bytes())


def test_vietnam_holidays_are_rest_days_in_local_time() -> None:
    tet = datetime(2026, 2, 18, 3, 0, tzinfo=UTC).timestamp()  # 10:00 in Hà Nội, Tết
    tuesday = datetime(2026, 2, 24, 3, 0, tzinfo=UTC).timestamp()
    assert VIETNAM.rest_day(date(2026, 2, 17))
    assert VIETNAM.slot(tet) == 24 + 10
    assert VIETNAM.slot(tuesday) == 10
    assert PLAIN.slot(tet) == 3


def test_config_is_validated() -> None:
    with pytest.raises(AnomalyError, match="level_rates"):
        EngineConfig(level_rates=(1.5,))
    with pytest.raises(AnomalyError, match="alert_score"):
        EngineConfig(alert_score=0.0)


def test_a_long_disturbance_is_one_episode_and_one_alert() -> None:
    rng = np.random.default_rng(8)
    values = np.concatenate(
        [rng.normal(100, 2, 800), rng.normal(100, 60, 400), rng.normal(100, 2, 600)]
    )
    short = EngineConfig(hold=20, extreme_margin=None)  # a hold much shorter than the disturbance
    once = alerts(run(values, Engine(short)), after=50)
    assert len(once) == 1
    assert 800 <= once[0] < 820
    # without ``hold_open`` the hold runs out inside the disturbance, which then alerts again
    again = Engine(EngineConfig(hold=20, hold_open=False, extreme_margin=None))
    assert len(alerts(run(values, again), after=50)) > 1


def test_a_new_extreme_alerts_where_the_noise_would_hide_it() -> None:
    rng = np.random.default_rng(10)
    values = rng.uniform(20, 80, 1000)  # a bounded metric (a CPU share), noisy within its range
    values[800] = 97.0
    assert alerts(run(values), after=50) == [800]
    hidden = run(values, Engine(NO_RECORDS))
    assert not alerts(hidden, after=50)
    assert hidden[800].score > 0.25 * EngineConfig().alert_score  # surprising, not alarming


def test_a_count_above_its_few_past_values_is_not_a_new_extreme() -> None:
    rng = np.random.default_rng(11)
    counts = rng.poisson(0.3, 1000).astype(float)
    counts[counts > 2] = 2.0
    counts[800] = 3.0  # beyond the range 0-2 by one count: the series' resolution
    assert not alerts(run(counts), after=50)


def test_after_a_gap_on_a_rest_days_unlearnt_hour_the_season_restarts_from_the_value() -> None:
    """A demo's history -> live boundary: three working days learnt (8 a bucket by day, 0 at
    night, first seen by day), then an hour without data ending at 06:00 on a Saturday, an hour
    no rest day has shown yet (so it borrows the working day's). The seasonal view restarts from
    the value it sees (0), not at minus the day's level (it once predicted -8 there, and its slow
    live level took hours to climb back: a first few events then looked like a surge)."""
    engine = Engine(LIVE, VIETNAM)
    block = engine.new_block()
    [row] = engine.add(block, 1)
    rows = np.array([row])
    at = datetime(2026, 12, 2, 3, tzinfo=UTC).timestamp()  # Wednesday 10:00 in Vietnam
    while at < datetime(2026, 12, 4, 22, tzinfo=UTC).timestamp():  # Saturday 05:00
        hour = (int(at // 3600) + 7) % 24
        engine.observe(block, rows, at + STEP, np.array([8.0 if 8 <= hour < 18 else 0.0]))
        at += STEP
    after = datetime(2026, 12, 4, 23, tzinfo=UTC).timestamp()  # Saturday 06:00, after the gap
    slot = VIETNAM.slot(after)
    assert slot >= 24
    assert block.season_n[row, slot] == 0
    assert block.season[row, slot % 24] < -7
    got = engine.observe(block, rows, after, np.array([0.0]))
    assert NOTES[got.note[0]] == "gap"
    assert got.expected[0] == pytest.approx(0.0, abs=0.1)
    assert block.slevel[row] + block.season[row, slot % 24] == pytest.approx(0.0, abs=0.1)
