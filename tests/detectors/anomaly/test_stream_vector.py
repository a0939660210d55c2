"""The vectorised engine (``stream/vengine.py``) scores as the scalar one, series by series."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import numpy as np
import pytest

from detectors.anomaly.stream import VIETNAM, Engine, EngineConfig
from detectors.anomaly.stream.bank import FORMAT_1, StreamBank
from detectors.anomaly.stream.config import LIVE
from detectors.anomaly.stream.vector import NOTES, Block
from detectors.anomaly.stream.vengine import VectorEngine
from soc.errors import AnomalyError

STEP = 300.0
START = 1_780_000_000.0


def _series(rng: np.random.Generator, count: int, length: int) -> np.ndarray:
    """Counts, zeros, floats, level shifts, spikes, daily rhythm: one row per series."""
    t = np.arange(length) * STEP
    daily = 1.0 + 0.8 * np.sin(2 * np.pi * t / 86400.0)
    out = np.empty((count, length))
    for i in range(count):
        kind = i % 5
        if kind == 0:
            row = rng.poisson(20.0 * daily).astype(float)
        elif kind == 1:
            row = (rng.random(length) < 0.03).astype(float) * rng.integers(1, 4, length)
        elif kind == 2:
            row = 50.0 + rng.normal(0, 3, length) + np.where(t > t[length // 2], 40.0, 0.0)
        elif kind == 3:
            row = rng.poisson(5.0 * daily).astype(float)
            row[rng.integers(0, length, 3)] += 60.0
        else:
            row = np.zeros(length)
        out[i] = row
    return out


@pytest.mark.parametrize("config", [EngineConfig(), LIVE], ids=["nab", "live"])
def test_vector_engine_equals_scalar(config: EngineConfig) -> None:
    rng = np.random.default_rng(18)
    count, length = 100, 450  # > 1.5 days of 5-minute buckets: the seasonal view judges too
    data = _series(rng, count, length)
    heard = rng.random((count, length)) > 0.002
    heard[:, 340:360] = False  # a collection gap of every series (relearning after it)
    heard[::7, :40] = False  # series that start late
    scalar = Engine(config, calendar=VIETNAM)
    vec = VectorEngine(config, calendar=VIETNAM)
    states = [scalar.new_state() for _ in range(count)]
    block = vec.new_block()
    rows = vec.add(block, count)
    alerts = 0
    for j in range(length):
        at = START + j * STEP
        mask = heard[:, j]
        got = vec.observe(block, rows[mask], at, data[mask, j])
        for g, i in enumerate(np.flatnonzero(mask)):
            want = scalar.observe(states[i], at, float(data[i, j]))
            assert got.score[g] == pytest.approx(want.score, rel=1e-6, abs=1e-9), (i, j)
            assert got.p[g] == pytest.approx(want.p, rel=1e-6, abs=1e-12), (i, j)
            assert got.expected[g] == pytest.approx(want.expected, rel=1e-9, abs=1e-9)
            if math.isfinite(want.high):
                assert got.high[g] == pytest.approx(want.high, rel=1e-6, abs=1e-9)
            assert bool(got.alert[g]) == want.alert
            assert NOTES[got.note[g]] == want.note
            alerts += want.alert
    assert alerts > 0  # the level shifts and spikes did alert
    copy = Block.from_bytes(block.to_bytes())
    assert np.array_equal(copy.season, block.season[: block.size])


def test_an_old_json_checkpoint_restores_into_rows_and_scores_alike() -> None:
    rng = np.random.default_rng(19)
    scalar = Engine(LIVE, calendar=VIETNAM)
    data = _series(rng, 10, 400)
    keys = [f"s{i}" for i in range(10)]
    states = {k: scalar.new_state() for k in keys}
    for j in range(300):
        for i, k in enumerate(keys):
            scalar.observe(states[k], START + j * STEP, float(data[i, j]))
    old = {
        "format": FORMAT_1,
        "states": {k: json.loads(json.dumps(s.to_dict())) for k, s in states.items()},
        "unbroken": dict.fromkeys(keys, START),
    }
    bank = StreamBank.restore(scalar, old)
    for j in range(300, 400):
        at = START + j * STEP
        values = dict(zip(keys, data[:, j].tolist(), strict=True))
        bank.observe_bucket(datetime.fromtimestamp(at, UTC), values)
        for i, k in enumerate(keys):
            scalar.observe(states[k], at, float(data[i, j]))
    for k in keys:
        assert bank.hold(k) == states[k].hold
        assert bank.block.maes[bank.rows[k]] == pytest.approx(states[k].maes, rel=1e-9)
    with pytest.raises(AnomalyError, match="unreadable"):
        StreamBank.restore(scalar, {**bank.checkpoint(), "block": "bm90IGEgemlw"})
