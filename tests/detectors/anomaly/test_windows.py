"""The 5-minute step and its two windows (issue 18), on the real Elasticsearch.

Two busy communes of Hà Nội (240 one-stop-shop requests an hour by day, 6 by night), a week of
history before ``T`` (Monday 07:00 in Vietnam), then:
- F: a 5xx storm (60 %) in ``[T+2h, T+2h15)``; all its traffic stops at ``T+5h`` while its
  collector keeps beating;
- G: a modest failure rise (1 % -> 20 %) in ``[T+3h, T+3h30)``: 3 failures of 20 in a step are
  too few to judge, 9 of 60 over 15 minutes are not; a healthy hour at twice its usual volume in
  ``[T+4h, T+5h)``; night from ``T+14h``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from detectors.anomaly import flows
from detectors.anomaly.flows import done_until, evaluate, run_due, save_checkpoint
from soc.alerts.models import Alert
from soc.config import Settings
from soc.es.indices import Indices
from tests.detectors.anomaly.conftest import T, trained
from tests.detectors.anomaly.history import Series, heartbeats, traffic, wards

STEP = timedelta(minutes=5)
END = T + timedelta(hours=17)
#: Days learnt (three are enough for two communes and keep the fixture quick).
DAYS = 3


@dataclass(frozen=True)
class Busy:
    settings: Settings
    indices: Indices
    model: Any
    f: str
    g: str


def _events(f: Series, g: Series) -> Iterator[dict[str, Any]]:
    start = T - timedelta(days=DAYS)
    for s in (f, g):
        yield from traffic(s, start, T, seed=1)
    h = timedelta(hours=1)
    yield from traffic(f, T, T + 2 * h, seed=2)
    yield from traffic(f, T + 2 * h, T + timedelta(minutes=135), seed=3, error_rate=0.6)
    yield from traffic(f, T + timedelta(minutes=135), T + 5 * h, seed=4)
    yield from traffic(g, T, T + 3 * h, seed=2)
    yield from traffic(g, T + 3 * h, T + timedelta(minutes=210), seed=3, error_rate=0.2)
    yield from traffic(g, T + timedelta(minutes=210), T + 4 * h, seed=4)
    twice = Series(g.ward, g.service, g.collector, 2 * g.day_rate, 2 * g.night_rate)
    yield from traffic(twice, T + 4 * h, T + 5 * h, seed=5)
    yield from traffic(g, T + 5 * h, END, seed=6)
    yield from heartbeats("col-f", "01", start, END)


@pytest.fixture(scope="module")
def busy(
    es: Elasticsearch, es_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Busy]:
    fw, gw = wards("01", 8)[6:8]
    f = Series(fw, "one-stop-shop", "col-f", 240, 6)
    g = Series(gw, "one-stop-shop", "col-f", 240, 6)
    var_dir = tmp_path_factory.mktemp("anomaly-windows")
    events = _events(f, g)
    with trained(es, es_url, var_dir, events, T, anomaly_training_days=DAYS) as (
        settings,
        indices,
        model,
        _,
    ):
        assert settings.anomaly_bucket_minutes == 5  # the default step
        yield Busy(settings, indices, model, fw.code, gw.code)


def _steps(es: Elasticsearch, b: Busy, start: datetime, end: datetime) -> list[Alert]:
    return evaluate(es, b.indices, start, end, model=b.model, settings=b.settings)


def _at(alerts: list[Alert], ward: str, rule: str) -> list[Alert]:
    return [a for a in alerts if a.rule.id == rule and a.place and a.place.ward_code == ward]


def test_a_storm_is_alerted_at_its_first_step_within_a_minute(
    es: Elasticsearch, busy: Busy
) -> None:
    # The job's tick 30 s after the step closed (lateness 20 s) scores it.
    first = T + timedelta(hours=2)
    found = run_due(
        es, busy.indices, busy.settings, model=busy.model, now=first + STEP + timedelta(seconds=30)
    )
    (storm,) = _at(found, busy.f, "anomaly-error-storm")
    assert (storm.window.start, storm.window.end) == (first, first + STEP)
    assert storm.explanation["since"] == "2026-11-16T02:00:00.000Z"


def test_a_modest_rise_is_alerted_by_the_long_window(es: Elasticsearch, busy: Busy) -> None:
    found = _steps(es, busy, T + timedelta(hours=3), T + timedelta(minutes=210))
    alerts = [a for a in found if a.place and a.place.ward_code == busy.g]
    assert alerts
    first = min(alerts, key=lambda a: a.window.end)
    # Never by one step alone (too few failures), by the 15 minutes ending at it.
    assert all(a.window.end - a.window.start == timedelta(minutes=15) for a in alerts)
    assert first.window.end <= T + timedelta(minutes=195)


def test_an_outage_is_alerted_at_its_first_step(es: Elasticsearch, busy: Busy) -> None:
    stop = T + timedelta(hours=5)
    outages = _at(_steps(es, busy, stop, stop + STEP), busy.f, "anomaly-outage")
    assert outages


def test_a_healthy_busy_hour_and_the_night_raise_nothing(es: Elasticsearch, busy: Busy) -> None:
    h = timedelta(hours=1)
    # A usual morning hour, and G's hour at twice its volume (F as usual): nothing anywhere.
    assert _steps(es, busy, T, T + h) == []
    assert _steps(es, busy, T + 4 * h, T + 5 * h) == []
    # The night (6 an hour): nothing about G (F's outage goes on, as it should).
    night = _steps(es, busy, T + 15 * h, T + 16 * h)
    assert [a for a in night if a.place and a.place.ward_code == busy.g] == []


def test_a_catch_up_is_bounded_per_run(
    es: Elasticsearch, busy: Busy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flows, "MAX_STEPS_PER_RUN", 2)
    save_checkpoint(es, busy.indices, T + timedelta(hours=6), 0)
    later = T + timedelta(hours=7, seconds=30)
    run_due(es, busy.indices, busy.settings, model=busy.model, now=later)
    assert done_until(es, busy.indices) == T + timedelta(hours=6, minutes=10)
    run_due(es, busy.indices, busy.settings, model=busy.model, now=later)
    assert done_until(es, busy.indices) == T + timedelta(hours=6, minutes=20)
