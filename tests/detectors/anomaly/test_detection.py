"""End to end on a trained model: error storms, outages vs silent collectors vs quiet hours,
the small-count guard, cold start, explanations, and idempotent, checkpointed runs."""

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


def test_error_storm_is_explained_and_chained(es: Elasticsearch, world: World) -> None:
    a = world.series["A"]
    first = _run(es, world, T + timedelta(hours=2))
    storms = [x for x in _by(first, "anomaly-error-storm") if x.place and x.place.ward_code]
    assert [x.place.ward_code for x in storms if x.place] == [a.ward.code]
    storm = storms[0]
    assert storm.service == "one-stop-shop"
    assert storm.score is not None
    assert storm.score > 0.5
    assert storm.place is not None
    assert storm.place.ward_name == a.ward.name
    ex = storm.explanation
    assert ex["kind"] == "error-storm"
    assert ex["baseline"] == "own history"
    assert ex["since"] == "2026-11-16T02:00:00.000Z"
    feature = next(f for f in ex["features"] if f["feature"] == "error_5xx")
    assert 0.3 < feature["observed"] < 0.7
    assert feature["expected"] < 0.05
    low, high = feature["band"]
    assert low == 0
    assert feature["expected"] < high < feature["observed"]
    assert "5xx" in storm.summary
    assert "expected" in storm.summary
    # The province as a whole sees the storm too, one level more severe.
    province = [x for x in _by(first, "anomaly-error-storm") if x.place and not x.place.ward_code]
    assert len(province) == 1
    assert province[0].severity.rank > storm.severity.rank - 1
    second = _run(es, world, T + timedelta(hours=2) + Q)
    (again,) = [x for x in _by(second, "anomaly-error-storm") if x.place and x.place.ward_code]
    assert again.explanation["since"] == "2026-11-16T02:00:00.000Z"  # since the first bucket
    assert _by(_run(es, world, T + timedelta(hours=3)), "anomaly-error-storm") == []  # over


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


def test_small_counts_are_not_anomalous(world: World) -> None:
    c = world.series["C"]
    key = Key(Level.COMMUNE, "01", c.ward.code, "one-stop-shop")
    base = world.model.baseline(key)
    assert base is not None
    assert base.level < 5
    s = world.settings
    small = Features(key, T, 3, {"http": 3, "e5xx": 1, "judged": 3, "failed": 1})
    assert (
        scoring.judge(
            small,
            base,
            0.75,
            alpha=s.anomaly_alpha,
            min_events=s.anomaly_min_events,
            min_failures=s.anomaly_min_failures,
        )
        == []
    )
    # The same one-in-three ratio over enough requests is a storm.
    big = Features(key, T, 60, {"http": 60, "e5xx": 20, "judged": 60, "failed": 20})
    found = scoring.judge(
        big,
        base,
        0.75,
        alpha=s.anomaly_alpha,
        min_events=s.anomaly_min_events,
        min_failures=s.anomaly_min_failures,
    )
    assert {d.kind for d in found} >= {"error-storm", "volume-surge"}


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
