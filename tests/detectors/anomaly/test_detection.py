"""End to end on a trained model: outages vs silent collectors vs quiet hours, the small-count
guard of latency, cold start, explanations, and idempotent, checkpointed runs (volumes and
failure counts are the live streaming detector's: ``test_live.py``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from elasticsearch import Elasticsearch

from detectors.anomaly import scoring
from detectors.anomaly.features import Features, Key, Level
from detectors.anomaly.flows import done_until, evaluate, run_due
from soc.alerts.models import Alert
from tests.detectors.anomaly.conftest import T, World
from tests.detectors.anomaly.history import wards

Q = timedelta(minutes=15)


def _run(es: Elasticsearch, world: World, start: datetime) -> list[Alert]:
    return evaluate(es, world.indices, start, start + Q, model=world.model, settings=world.settings)


def _by(alerts: list[Alert], rule: str) -> list[Alert]:
    return [a for a in alerts if a.rule.id == rule]


def test_normal_traffic_raises_nothing(es: Elasticsearch, world: World) -> None:
    for start in (T, T + Q, T + 2 * Q):
        assert _run(es, world, start) == []


def test_error_storms_are_no_longer_the_15_minute_models(es: Elasticsearch, world: World) -> None:
    # Volumes and failure counts are the live streaming detector's (test_live.py); commune A's
    # storm (half of ~8 requests a 5-minute bucket) is below the stream's alert line, and the
    # Sigma ratio rule service_failure_ratio finds it per province.
    alerts = _run(es, world, T + timedelta(hours=2))
    assert {a.rule.id for a in alerts} <= {
        "anomaly-outage",
        "anomaly-collector-silence",
        "anomaly-slowdown",
    }


def test_outage_versus_silent_collector(es: Elasticsearch, world: World) -> None:
    b, d = world.series["B"], world.series["D"]
    alerts = _run(es, world, T + timedelta(hours=1) + Q)
    outages = _by(alerts, "anomaly-outage")
    assert [(x.place.ward_code if x.place else None, x.service) for x in outages] == [
        (d.ward.code, "one-stop-shop")
    ]
    outage = outages[0]
    assert outage.explanation["collectors"] == ["col-a"]
    assert outage.explanation["since"].startswith("2026-11-16T00:5")  # just after the last event
    assert outage.explanation["features"][0]["expected"] > 16
    (collector,) = _by(alerts, "anomaly-collector-silence")
    assert collector.entity is not None
    assert collector.entity.value == "col-b"
    affected = collector.explanation["affected_keys"]
    assert f"commune/01/{b.ward.code}/one-stop-shop" in affected
    assert f"commune/01/{b.ward.code}/otp-gateway" in affected
    assert all(b.ward.code not in x.group.values() for x in outages)


def test_a_commune_that_stops_sending_anything(es: Elasticsearch, world: World) -> None:
    e = world.series["E"]
    outages = _by(_run(es, world, T + timedelta(hours=4)), "anomaly-outage")
    mine = [x for x in outages if x.place and x.place.ward_code == e.ward.code]
    assert [(x.service, x.entity.type if x.entity else None) for x in mine] == [(None, "locality")]
    assert mine[0].group["service"] == "*"
    assert "all services" in mine[0].title
    assert mine[0].explanation["collectors"] == ["col-a"]


def test_quiet_hour_silence_is_normal(es: Elasticsearch, world: World) -> None:
    # 01:00 in Vietnam: the communes still running send about one event an hour or less, and
    # their gaps of an hour or two are normal; only the ones stopped since the morning remain
    # (an outage does not end because the night came).
    alerts = _run(es, world, T + timedelta(hours=18))
    running = {world.series[n].ward.code for n in ("A", "C")}
    assert [a for a in alerts if a.place and a.place.ward_code in running] == []
    stopped = {world.series[n].ward.code for n in ("D", "E")}
    outages = _by(alerts, "anomaly-outage")
    assert outages
    assert {a.place.ward_code for a in outages if a.place and a.place.ward_code} <= stopped


def test_small_counts_are_not_judged_slow(world: World) -> None:
    c = world.series["C"]
    key = Key(Level.COMMUNE, "01", c.ward.code, "one-stop-shop")
    base = world.model.baseline(key)
    assert base is not None
    assert base.p95_ms
    s = world.settings
    slow = 20 * base.p95_ms
    # Three slow requests in a quiet hour are not a slowdown; sixty are.
    small = Features(key, T, 3, {"http": 3}, p95_ms=slow)
    assert scoring.judge(small, base, alpha=s.anomaly_alpha, min_events=s.anomaly_min_events) == []
    big = Features(key, T, 60, {"http": 60}, p95_ms=slow)
    found = scoring.judge(big, base, alpha=s.anomaly_alpha, min_events=s.anomaly_min_events)
    assert [d.kind for d in found] == ["slowdown"]


def test_new_commune_borrows_its_province_peers(world: World) -> None:
    (new,) = [w for w in wards("01", 6)[5:]]
    base = world.model.baseline(Key(Level.COMMUNE, "01", new.code, "one-stop-shop"))
    assert base is not None
    assert base.source.startswith("province peers")
    busy = world.model.baselines[
        Key(Level.COMMUNE, "01", world.series["A"].ward.code, "one-stop-shop")
    ]
    assert 0 < base.level <= busy.level * 1.5


def test_evaluating_twice_doubles_nothing(es: Elasticsearch, world: World) -> None:
    start = T + timedelta(hours=2)
    first = {a.id for a in _run(es, world, start)}
    second = {a.id for a in _run(es, world, start)}
    assert first
    assert first == second
    stored = es.count(index=world.indices.alerts, query={"ids": {"values": sorted(first)}})
    assert stored["count"] == len(first)


def test_run_due_catches_up_once(es: Elasticsearch, world: World) -> None:
    s, m = world.settings, world.model
    assert done_until(es, world.indices) is None
    run_due(es, world.indices, s, model=m, now=T + timedelta(hours=3))
    assert done_until(es, world.indices) == T + timedelta(hours=2, minutes=45)
    later = run_due(es, world.indices, s, model=m, now=T + timedelta(hours=4))
    assert done_until(es, world.indices) == T + timedelta(hours=3, minutes=45)
    windows = {a.window.start for a in later}
    assert all(
        T + timedelta(hours=2, minutes=45) <= w < T + timedelta(hours=3, minutes=45)
        for w in windows
    )
    assert run_due(es, world.indices, s, model=m, now=T + timedelta(hours=4)) == []
