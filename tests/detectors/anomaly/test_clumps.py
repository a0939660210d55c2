"""Clumpy traffic: a commune whose VNeID logins are three events each from one client.

Its silence is as likely as that of a series with a third of the events, so training must learn
a dispersion of about 3 from its clumps (events per client and hour), and the silence that a
Poisson reading called improbable (16 events expected, p = 9e-8 in the demo of 2026-12-05) is
not an outage; a silence three times as long still is. A client that is a gateway (steady
counts) is not taken for a clump. A model saved before clumps were counted loads with its
dispersion as it was trained.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from elasticsearch import Elasticsearch

from detectors.anomaly import silence
from detectors.anomaly.baseline import persistence
from detectors.anomaly.baseline.model import fit
from detectors.anomaly.features import Features, Key, Level
from tests.detectors.anomaly.conftest import T, World, trained
from tests.detectors.anomaly.history import HOUR, Series, event, heartbeats, traffic, wards

CLUMP = 3
Q = timedelta(minutes=15)
GAP = (timedelta(hours=4), timedelta(hours=8))


def _clumpy(s: Series, start: Any, end: Any) -> Iterator[dict[str, Any]]:
    """``s``'s events in clumps of :data:`CLUMP`, one client each, seconds apart."""
    rng = np.random.default_rng([7, int(s.ward.code)])
    hour, n = start, 0
    while hour < end:
        for _ in range(int(rng.poisson(s.rate(hour) / CLUMP))):
            at = hour + HOUR * float(rng.random())
            ip = f"10.9.{n // 250 % 250}.{n % 250 + 1}"
            for step in range(CLUMP):
                body = event(s, at + timedelta(seconds=2 * step), n * CLUMP + step)
                body["source"]["ip"] = ip
                yield body
            n += 1
        hour += HOUR


@pytest.fixture(scope="module")
def clumpy(
    es: Elasticsearch, es_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """A week of clumpy VNeID traffic (6 events an hour by day, 0.6 by night), trained up to
    ``T`` (07:00 in Vietnam), then silent; its collector goes on beating. A busy province's VNeID
    traffic makes the service's shape, as the other 33 provinces do (one week of a single
    commune would be its own shape, hour by hour). The busy province goes on after ``T``, but
    nothing at all is stored in ``[T+4h, T+8h)``: a collection gap."""
    (ward,) = wards("48", 1)
    s = Series(ward, "vneid", "col-z", 6.0, 0.6)
    (busy,) = wards("01", 1)
    other = Series(busy, "vneid", "col-z", 200.0, 20.0)
    events = [
        *_clumpy(s, T - timedelta(days=7), T),
        *traffic(other, T - timedelta(days=7), T + GAP[0], seed=9),
        *traffic(other, T + GAP[1], T + timedelta(hours=14), seed=10),
        *heartbeats("col-z", "48", T - timedelta(days=7), T + GAP[0]),
        *heartbeats("col-z", "48", T + GAP[1], T + timedelta(hours=14)),
    ]
    var_dir = tmp_path_factory.mktemp("clumps")
    with trained(es, es_url, var_dir, events, T) as (settings, indices, model, path):
        yield World(settings, indices, model, path, {"Z": s})


def _outage(es: Elasticsearch, world: World, key: Key, after: timedelta, model: Any) -> bool:
    end = T + after
    found, _ = silence.find(
        es,
        world.indices,
        model,
        end - Q,
        end,
        lookback=timedelta(minutes=world.settings.anomaly_silence_lookback_minutes),
        alpha=world.settings.anomaly_alpha,
    )
    return key in {s.key for s in found}


def test_clumps_of_three_learn_a_dispersion_of_three(es: Elasticsearch, clumpy: World) -> None:
    key = Key(Level.COMMUNE, "48", clumpy.series["Z"].ward.code, "vneid")
    base = clumpy.model.baselines[key]
    assert 2.8 <= base.clump <= CLUMP
    assert base.clump <= base.dispersion <= 4
    # ~3 h 30 min of daytime silence: ~20 events expected, ~7 clumps. A Poisson reading (the
    # dispersion floored at 1) calls it an outage; this series does not.
    short = timedelta(hours=3, minutes=30)
    expected = clumpy.model.expected(key, base, T, T + short)
    assert 16 < expected < 3 * 16
    poisson = replace(clumpy.model, baselines={key: replace(base, dispersion=1.0, clump=1.0)})
    assert _outage(es, clumpy, key, short, poisson)
    assert not _outage(es, clumpy, key, short, clumpy.model)
    # A silence with 9 h 30 min of evidence (13 h 30 min, less the 4 h gap) is still an outage.
    assert _outage(es, clumpy, key, timedelta(hours=13, minutes=30), clumpy.model)


def test_a_collection_gap_is_no_evidence_of_silence(es: Elasticsearch, clumpy: World) -> None:
    """Nothing stored from anyone for 4 h: those hours do not count towards a silence. At
    T+10h30 the commune's 10 h 30 min would be an outage; its 6 h 30 min outside the gap are
    not (about 43 events, 14 clumps)."""
    key = Key(Level.COMMUNE, "48", clumpy.series["Z"].ward.code, "vneid")
    base = clumpy.model.baselines[key]
    gaps = silence.collection_gaps(es, clumpy.indices, T, T + timedelta(hours=14))
    assert gaps == [(T + GAP[0], T + GAP[1])]
    at = timedelta(hours=10, minutes=30)
    threshold = math.log(1 / clumpy.settings.anomaly_alpha)
    assert clumpy.model.expected(key, base, T, T + at) / base.dispersion > threshold
    assert not _outage(es, clumpy, key, at, clumpy.model)


def test_a_model_saved_before_clumps_loads_as_trained(clumpy: World, tmp_path: Path) -> None:
    data = orjson.loads(clumpy.model_path.read_bytes())
    for b in data["baselines"].values():
        del b["clump"]
    old = tmp_path / "anomaly-old.json"
    old.write_bytes(orjson.dumps(data))
    loaded = persistence.load(old)
    for key, base in clumpy.model.baselines.items():
        assert loaded.baselines[key].dispersion == base.dispersion
        assert loaded.baselines[key].clump == 1.0


def test_a_gateway_is_not_a_clump() -> None:
    """One client per hour carrying a busy key's independent events (an office's gateway, a
    calling server): 50 "events per clump", but counts as steady as Poisson prove that no clump
    makes them variable, so the dispersion stays near 1."""
    rng = np.random.default_rng(3)
    start = T - timedelta(days=7)
    key = Key(Level.PROVINCE, "48", None, "national-db")
    hourly = [(key, start + i * HOUR, int(rng.poisson(50))) for i in range(7 * 24)]
    total = sum(c for _, _, c in hourly)
    model = fit(hourly, [Features(key, start, total)], start, T, {key: [total, 7 * 24]})
    base = model.baselines[key]
    assert base.clump > 40
    assert base.dispersion < 2
