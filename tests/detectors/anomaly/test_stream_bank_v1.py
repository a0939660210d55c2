"""A bank checkpoint of the first format (``soc-stream-bank/1``: one JSON state per series, as the
per-series engine soc had before the one engine wrote it) still restores, and continues with the
scores that engine gave.

``data/stream_bank_1.json`` was written by that engine (commit a225905, ``LIVE`` parameters,
Vietnam's calendar): five series (counts with a daily rhythm, a zero-heavy one, a level shift,
spikes, all zeros) observed for 300 five-minute buckets, the checkpoint, then the next 80 buckets'
values and the verdicts it gave on them (one alert: a spike in bucket 65).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detectors.anomaly.stream import VIETNAM, Engine
from detectors.anomaly.stream.bank import StreamBank
from detectors.anomaly.stream.config import LIVE
from soc.errors import AnomalyError

FIXTURE = Path(__file__).parent / "data" / "stream_bank_1.json"


def _fixture() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return data


def test_a_first_format_checkpoint_continues_as_its_engine_did() -> None:
    old = _fixture()
    engine = Engine(LIVE, calendar=VIETNAM)
    bank = StreamBank.restore(engine, old["checkpoint"])
    keys, after = old["keys"], old["after"]
    rows = np.array([bank.rows[k] for k in keys])
    for j, values in enumerate(after["values"]):
        at = old["start"] + j * old["step"]
        got = engine.observe(bank.block, rows, at, np.array(values))
        assert got.score == pytest.approx(after["score"][j], rel=1e-6, abs=1e-9), j
        assert got.p == pytest.approx(after["p"][j], rel=1e-6, abs=1e-12), j
        assert got.expected == pytest.approx(after["expected"][j], rel=1e-9, abs=1e-9), j
        assert got.alert.tolist() == after["alert"][j], j
    assert sum(map(sum, after["alert"])) == 1
    # and it checkpoints in today's format, from which it restores again
    again = StreamBank.restore(engine, json.loads(json.dumps(bank.checkpoint())))
    assert again.checkpoint() == bank.checkpoint()


def test_a_damaged_first_format_state_is_refused() -> None:
    engine = Engine(LIVE, calendar=VIETNAM)
    old = _fixture()["checkpoint"]
    wrong = copy.deepcopy(old)
    wrong["states"]["s0"]["format"] = "soc-stream-state/0"
    with pytest.raises(AnomalyError, match="format"):
        StreamBank.restore(engine, wrong)
    short = copy.deepcopy(old)
    short["states"]["s1"]["season"] = [0.0] * 5
    with pytest.raises(AnomalyError, match="unreadable"):
        StreamBank.restore(engine, short)


def test_a_current_checkpoint_that_is_not_a_zip_is_refused() -> None:
    bank = StreamBank(Engine(LIVE, calendar=VIETNAM))
    bank.observe_bucket(datetime(2026, 1, 5, tzinfo=UTC), {"a": 1.0})
    with pytest.raises(AnomalyError, match="unreadable"):
        StreamBank.restore(bank.engine, {**bank.checkpoint(), "block": "bm90IGEgemlw"})
