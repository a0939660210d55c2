"""Live use of the engine: five-minute buckets of many series; gaps and the history -> live
boundary raise nothing, an outage is named in its own bucket and explained, a checkpoint
continues exactly.

Pure unit tests (no Elasticsearch): the bank is fed the counts a composite aggregation would give.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np

from detectors.anomaly.stream import VIETNAM, Engine
from detectors.anomaly.stream.bank import StreamBank
from detectors.anomaly.stream.config import LIVE

BUCKET = timedelta(minutes=5)
START = datetime(2026, 1, 5, tzinfo=UTC) - timedelta(hours=7)  # Monday 00:00 in Hà Nội


def _bank() -> StreamBank:
    return StreamBank(Engine(LIVE, calendar=VIETNAM))


def _traffic(rng: np.random.Generator) -> dict[str, float]:
    return {"busy": float(rng.poisson(100)), "quiet": float(rng.poisson(0.3))}


def _history(bank: StreamBank, rng: np.random.Generator, days: float) -> datetime:
    at = START
    while at < START + timedelta(days=days):
        at += BUCKET
        assert bank.observe_bucket(at, _traffic(rng)) == [], at
    return at


def test_history_then_a_gap_then_live_traffic_raises_nothing() -> None:
    rng = np.random.default_rng(11)
    bank = _bank()
    at = _history(bank, rng, 4)
    at += timedelta(minutes=47)  # the backfill ended at the hour; live traffic starts later
    for _ in range(60):
        at += BUCKET
        live = {"busy": float(rng.poisson(130)), "quiet": float(rng.poisson(0.3))}
        assert bank.observe_bucket(at, live) == [], at


def test_an_outage_is_named_in_its_own_bucket_and_explained() -> None:
    rng = np.random.default_rng(12)
    bank = _bank()
    at = _history(bank, rng, 4) + BUCKET
    found = bank.observe_bucket(at, {"quiet": 0.0})  # "busy" sent nothing at all
    assert [f.key for f in found] == ["busy"]
    why = found[0].explanation()
    assert why["observed"] == 0.0
    assert why["band"][0] > 0.0
    assert why["since"] == at.isoformat().replace("+00:00", "Z")
    assert "heard in this bucket" in why["not_a_gap"]


def test_an_unheard_collector_is_a_gap_not_an_outage() -> None:
    rng = np.random.default_rng(13)
    bank = _bank()
    at = _history(bank, rng, 4)
    for _ in range(6):  # half an hour without the busy series' collector
        at += BUCKET
        assert bank.observe_bucket(at, {}, heard=lambda key: key != "busy") == []
    for _ in range(12):
        at += BUCKET
        assert bank.observe_bucket(at, _traffic(rng)) == []


def test_a_checkpoint_restores_the_bank_exactly() -> None:
    rng = np.random.default_rng(14)
    bank = _bank()
    at = _history(bank, rng, 2)
    copy = StreamBank.restore(
        Engine(LIVE, calendar=VIETNAM), json.loads(json.dumps(bank.checkpoint()))
    )
    for _ in range(50):
        at += BUCKET
        values = _traffic(rng)
        assert bank.observe_bucket(at, values) == copy.observe_bucket(at, values)
    assert bank.checkpoint() == copy.checkpoint()
