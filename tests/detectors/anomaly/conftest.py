"""A week of seasonal history plus known incidents, indexed once per session (on first use).

Communes of Hà Nội (01) with two services each:
- A: busiest; an error storm (half of the requests 5xx) in ``[T+2h, T+2h30)``.
- B: busy; its collector ``col-b`` stops at ``T+1h`` (no events, no heartbeats).
- C: small (3 requests an hour by day).
- D: busy; its one-stop-shop traffic stops at ``T+1h`` while ``col-a`` keeps beating.
- E: small (4 + 2 an hour); everything stops at ``T+1h``: each service alone is too small to
  prove a silence within the look-back, the commune as a whole is not.
The model is trained on the week before ``T`` (a Monday, 07:00 in Vietnam).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from detectors.anomaly.baseline.model import Model
from detectors.anomaly.flows import train
from soc.config import Settings, load_settings
from soc.es.indices import Indices
from soc.es.templates import setup, teardown
from soc.events.service import index_events
from tests.detectors.anomaly.history import Series, heartbeats, traffic, wards

T = datetime(2026, 11, 16, 0, 0, tzinfo=UTC)
END = T + timedelta(hours=20)


@dataclass(frozen=True)
class World:
    settings: Settings
    indices: Indices
    model: Model
    model_path: Path
    series: dict[str, Series]


def _series() -> dict[str, Series]:
    a, b, c, d, e = wards("01", 5)
    out: dict[str, Series] = {}
    for name, ward, collector, day, night in (
        ("A", a, "col-a", 100, 2),
        ("B", b, "col-b", 60, 1),
        ("C", c, "col-a", 3, 0.2),
        ("D", d, "col-a", 60, 1),
        ("E", e, "col-a", 4, 0.07),
    ):
        out[name] = Series(ward, "one-stop-shop", collector, day, night)
        out[name + "otp"] = Series(ward, "otp-gateway", collector, day / 2, night, 0.03)
    return out


def _events(series: dict[str, Series]) -> Iterator[dict[str, Any]]:
    start = T - timedelta(days=7)
    for name, s in series.items():
        yield from traffic(s, start, T, seed=1)
        stop = T + timedelta(hours=1) if name in ("B", "Botp", "D", "E", "Eotp") else END
        if name == "A":
            yield from traffic(s, T, T + timedelta(hours=2), seed=2)
            yield from traffic(
                s, T + timedelta(hours=2), T + timedelta(minutes=150), seed=3, error_rate=0.5
            )
            yield from traffic(s, T + timedelta(minutes=150), END, seed=4)
        else:
            yield from traffic(s, T, stop, seed=2)
    yield from heartbeats("col-a", "01", start, END)
    yield from heartbeats("col-b", "01", start, T + timedelta(hours=1))


@contextmanager
def trained(
    es: Elasticsearch,
    es_url: str,
    var_dir: Path,
    events: Iterable[dict[str, Any]],
    at: datetime,
    **overrides: Any,
) -> Iterator[tuple[Settings, Indices, Model, Path]]:
    """``events`` in a fresh index prefix and a model trained on them up to ``at``; the prefix
    and ``var_dir`` are removed afterwards."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    settings = load_settings(es_url=es_url, index_prefix=prefix, var_dir=var_dir, **overrides)
    indices = Indices(prefix)
    setup(es, indices)
    result = index_events(es, indices, iter(events), refresh=True, chunk_size=5000)
    assert not result.errors
    model, path = train(es, indices, settings, at)
    try:
        yield settings, indices, model, path
    finally:
        teardown(es, prefix)
        shutil.rmtree(var_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def world(
    es: Elasticsearch, es_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    series = _series()
    var_dir = tmp_path_factory.mktemp("anomaly")
    # The world's tests were written for one 15-minute window a step (what each check finds,
    # when); the 5-minute step and its two windows are tested in test_windows.py.
    with trained(es, es_url, var_dir, _events(series), T, anomaly_bucket_minutes=15) as (
        settings,
        indices,
        model,
        path,
    ):
        yield World(settings, indices, model, path, series)
