"""An SMS carrier's failure at the 5-minute step (issue 18), on the real Elasticsearch.

What the simulator's ``otp_carrier_failure`` does (``soc/simulate/effects.py``, ``_carrier``):
every SMS of one carrier fails with ``SMS_DELIVERY_FAILED`` after 10-30 s and its OTP check never
comes. The OTP gateways of two Hà Nội communes, three days of history before ``T`` (Monday
07:00 in Vietnam), then:
- busy (240 events an hour by day): the carrier of a third of its users is down in
  ``[T+2h, T+2h15)``;
- quiet (6 an hour): three failed sends at ``T+3h`` + 3, 8 and 13 minutes, one per step, as few
  as Hồ Chí Minh City's MobiFone users sent in the first 40 minutes of the scenario bench's
  carrier failure (Sunday morning);
- busy again at twice its volume, healthy, in ``[T+4h, T+5h)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
from elasticsearch import Elasticsearch

from detectors.anomaly.flows import evaluate
from soc.alerts.models import Alert
from soc.config import Settings
from soc.es.indices import Indices
from tests.detectors.anomaly.conftest import T, trained
from tests.detectors.anomaly.history import Series, event, heartbeats, traffic, wards

STEP = timedelta(minutes=5)
H = timedelta(hours=1)
DAYS = 3


@dataclass(frozen=True)
class Gateways:
    settings: Settings
    indices: Indices
    model: Any
    busy: str
    quiet: str


def _failed_send(s: Series, at: datetime, n: int, ms: float) -> dict[str, Any]:
    body = event(s, at, 2 * n, failed=True, duration_ms=ms)  # even n: an otp-send
    body["error"] = {"code": "SMS_DELIVERY_FAILED"}
    return body


def _carrier_down(
    s: Series, start: datetime, end: datetime, share: float
) -> Iterator[dict[str, Any]]:
    """``s``'s usual traffic in which the carrier of ``share`` of the subscribers is down."""
    rng = np.random.default_rng(9)
    for body in traffic(s, start, end, seed=3):
        if rng.random() >= share:
            yield body
        elif body["event"]["action"] == "otp-send":
            body["event"].update(outcome="failure", duration=int(rng.uniform(10e3, 30e3) * 1e6))
            body["error"] = {"code": "SMS_DELIVERY_FAILED"}
            yield body
        # the carrier's subscribers never get a code to verify: their otp-verify is gone


def _events(busy: Series, quiet: Series) -> Iterator[dict[str, Any]]:
    start = T - timedelta(days=DAYS)
    yield from traffic(busy, start, T + 2 * H, seed=1)
    yield from _carrier_down(busy, T + 2 * H, T + 2 * H + 3 * STEP, share=1 / 3)
    yield from traffic(busy, T + 2 * H + 3 * STEP, T + 4 * H, seed=4)
    twice = Series(busy.ward, busy.service, busy.collector, 2 * busy.day_rate, 2 * busy.night_rate)
    yield from traffic(twice, T + 4 * H, T + 5 * H, seed=5, error_rate=busy.error_rate)
    yield from traffic(quiet, start, T + 5 * H, seed=1)
    for i, minutes in enumerate((3, 8, 13)):
        yield _failed_send(quiet, T + 3 * H + timedelta(minutes=minutes), 900_000 + i, 20e3)
    yield from heartbeats("col-otp", "01", start, T + 5 * H)


@pytest.fixture(scope="module")
def gateways(
    es: Elasticsearch, es_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateways]:
    bw, qw = wards("01", 10)[8:10]
    busy = Series(bw, "otp-gateway", "col-otp", 240, 6, 0.005)
    quiet = Series(qw, "otp-gateway", "col-otp", 6, 0.3, 0.005)
    var_dir = tmp_path_factory.mktemp("anomaly-carrier")
    with trained(es, es_url, var_dir, _events(busy, quiet), T, anomaly_training_days=DAYS) as (
        settings,
        indices,
        model,
        _,
    ):
        yield Gateways(settings, indices, model, bw.code, qw.code)


def _at(es: Elasticsearch, g: Gateways, ward: str, start: datetime, end: datetime) -> list[Alert]:
    found = evaluate(es, g.indices, start, end, model=g.model, settings=g.settings)
    return [a for a in found if a.place and a.place.ward_code == ward]


def test_a_busy_gateway_s_carrier_failure_is_alerted_at_its_first_step(
    es: Elasticsearch, gateways: Gateways
) -> None:
    first = T + 2 * H
    alerts = _at(es, gateways, gateways.busy, first, first + STEP)
    # ~10 sends a step, 3 of them failed: below the 5 failures a ratio needs in one step, but
    # 3 requests past 800 ms (the key's slow rung: training reached it less than 1 % of the
    # time) among 18 are a slowdown.
    (slow,) = [a for a in alerts if a.window.end - a.window.start == STEP]
    assert slow.rule.id == "anomaly-slowdown"
    assert slow.window.start == first
    assert slow.explanation["features"][0]["feature"] == "slow_share"


def test_a_quiet_gateway_s_carrier_failure_is_alerted_at_its_third_failed_send(
    es: Elasticsearch, gateways: Gateways
) -> None:
    # One failed SMS, then two, are no evidence at alpha 1e-7 (a user's bad luck); three past
    # the usual 1-in-100 latency are, whatever the volume: the step holding the third.
    start = T + 3 * H
    assert _at(es, gateways, gateways.quiet, start, start + 2 * STEP) == []
    (alert,) = _at(es, gateways, gateways.quiet, start + 2 * STEP, start + 3 * STEP)
    assert alert.window.end == start + 3 * STEP
    assert alert.rule.id == "anomaly-slowdown"


def test_a_twice_as_busy_hour_raises_nothing(es: Elasticsearch, gateways: Gateways) -> None:
    # The busy gateway at twice its volume, the quiet one as usual: nothing about either.
    found = evaluate(es, gateways.indices, T + 4 * H, T + 5 * H, model=gateways.model,
                     settings=gateways.settings)  # fmt: skip
    assert [
        a for a in found if a.place and a.place.ward_code in (gateways.busy, gateways.quiet)
    ] == []
