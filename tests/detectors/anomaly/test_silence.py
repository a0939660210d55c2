"""How long a silence must last before it is an outage: derived from each series' expected rate.

A busy series is an outage within a bucket; a commune that expects a few events an hour only
after hours of silence; a quiet hour or a too-small series never. A collector that stopped (no
heartbeat) is a monitoring gap, not a service outage. On a holiday the expectation is the volume
the key itself carried before its silence. Test world: ``conftest.py``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from elasticsearch import Elasticsearch

from detectors.anomaly import silence, silence_holiday
from detectors.anomaly.features import ALL_SERVICES, Key, Level
from detectors.anomaly.flows import evaluate
from detectors.anomaly.silence import last_seen, needed_silence
from detectors.anomaly.silence_holiday import touches_holiday
from soc.alerts.models import Alert
from soc.events.service import index_events
from tests.detectors.anomaly.conftest import T, World
from tests.detectors.anomaly.history import Series, heartbeats, traffic

Q = timedelta(minutes=15)
DAY = timedelta(hours=24)
HOUR = timedelta(hours=1)


def _outages(es: Elasticsearch, world: World, start_offset: timedelta) -> list[Alert]:
    start = T + start_offset
    found = evaluate(
        es, world.indices, start, start + Q, model=world.model, settings=world.settings
    )
    return [a for a in found if a.rule.id == "anomaly-outage"]


def _key(world: World, name: str, service: str = "one-stop-shop") -> Key:
    return Key(Level.COMMUNE, "01", world.series[name].ward.code, service)


def _needed(world: World, key: Key, end_offset: timedelta, limit: timedelta = DAY) -> timedelta:
    base = world.model.baselines[key]
    needed = needed_silence(
        world.model, key, base, T + end_offset, world.settings.anomaly_alpha, limit
    )
    assert needed is not None
    return needed


def test_the_needed_silence_follows_the_expected_rate(world: World) -> None:
    """At 15:00 in Vietnam, after a day of office hours: a province needs less than half a
    bucket, a commune with ~60 an hour about a quarter of an hour, one with ~4 an hour hours."""
    alpha = world.settings.anomaly_alpha
    province = Key(Level.PROVINCE, "01", None, "one-stop-shop")
    busy, small = _key(world, "D"), _key(world, "E")
    at = timedelta(hours=8)
    assert _needed(world, province, at) < Q / 2
    busy_needed = _needed(world, busy, at)
    small_needed = _needed(world, small, at)
    assert busy_needed <= 2 * Q
    assert timedelta(hours=3) < small_needed < timedelta(hours=8)
    # At 10:00 the same run would reach back into the night, so it must be longer still.
    assert _needed(world, small, timedelta(hours=3)) > small_needed
    # It is the run over which the series expects dispersion * ln(1/alpha) events.
    for key, needed in ((busy, busy_needed), (small, small_needed)):
        base = world.model.baselines[key]
        end = T + at
        expected = world.model.expected(key, base, end - needed, end)
        assert math.isclose(expected, base.dispersion * math.log(1 / alpha), rel_tol=1e-6)


def test_a_quiet_hour_needs_more_than_the_look_back(world: World) -> None:
    # 01:00 in Vietnam, a small commune: three hours of night silence prove nothing.
    key = _key(world, "C")
    base = world.model.baselines[key]
    at = T + timedelta(hours=18)
    limit = timedelta(hours=3)
    assert needed_silence(world.model, key, base, at, world.settings.anomaly_alpha, limit) is None
    # Looking back into the day, it would take many hours.
    assert _needed(world, key, timedelta(hours=18)) > timedelta(hours=6)


def test_a_busy_series_alerts_within_two_buckets(es: Elasticsearch, world: World) -> None:
    d = world.series["D"]
    (outage,) = [
        a
        for a in _outages(es, world, timedelta(hours=1) + Q)
        if a.place and a.place.ward_code == d.ward.code
    ]
    ex = outage.explanation
    assert outage.service == "one-stop-shop"
    assert ex["needed_minutes"] <= 30
    assert ex["needed_minutes"] <= ex["silent_minutes"] <= 45  # stopped at T+1h, scored to T+1h30
    assert ex["expected_per_hour"] > 30
    assert "improbable" in outage.summary


def test_a_quiet_series_alerts_only_after_enough_silence(es: Elasticsearch, world: World) -> None:
    """E's one-stop shop (about 4 an hour) stopped at T+1h with the rest of the commune."""
    e = world.series["E"]
    oss = _key(world, "E")
    needed = _needed(world, oss, timedelta(hours=8))
    assert timedelta(hours=3) < needed < timedelta(hours=7)

    def mine(offset: timedelta) -> list[Alert]:
        return [
            a
            for a in _outages(es, world, offset)
            if a.place and a.place.ward_code == e.ward.code and a.service == "one-stop-shop"
        ]

    # Three hours of silence are not enough for this series (the commune as a whole is
    # another key; see test_detection).
    assert mine(timedelta(hours=4)) == []
    # Once the silence outlasts what this series needs, it is an outage, explained.
    (outage,) = mine(timedelta(hours=8))
    ex = outage.explanation
    assert abs(ex["needed_minutes"] - needed.total_seconds() / 60) <= 16
    assert ex["silent_minutes"] >= ex["needed_minutes"] > 180
    assert ex["since_known"] is True
    assert ex["since"].startswith("2026-11-16T00:")  # just after its last event, before T+1h
    assert 1 < ex["expected_per_hour"] < 10
    assert ex["features"][0]["expected"] > math.log(1 / world.settings.anomaly_alpha)
    assert " h " in outage.summary
    assert "expected" in outage.summary


def test_a_silent_collector_is_not_a_service_outage(es: Elasticsearch, world: World) -> None:
    """B's collector stopped (no events, no heartbeat): one collector alert, no outage of B."""
    b = world.series["B"]
    found = evaluate(
        es,
        world.indices,
        T + timedelta(hours=6),
        T + timedelta(hours=6) + Q,
        model=world.model,
        settings=world.settings,
    )
    assert not [
        a for a in found if a.rule.id == "anomaly-outage" and b.ward.code in a.group.values()
    ]
    (collector,) = [a for a in found if a.rule.id == "anomaly-collector-silence"]
    assert collector.entity is not None
    assert collector.entity.value == "col-b"
    assert f"commune/01/{b.ward.code}/otp-gateway" in collector.explanation["affected_keys"]


def test_last_seen_covers_both_levels_and_all_services(es: Elasticsearch, world: World) -> None:
    start, end = T, T + timedelta(hours=2)
    seen = last_seen(es, world.indices, start, end)
    d = world.series["D"]
    oss, otp = _key(world, "D"), _key(world, "D", "otp-gateway")
    every = Key(Level.COMMUNE, "01", d.ward.code, ALL_SERVICES)
    assert seen[every] == max(seen[oss], seen[otp])
    assert (
        seen[oss] < T + timedelta(hours=1) <= seen[Key(Level.PROVINCE, "01", None, "one-stop-shop")]
    )
    province_all = seen[Key(Level.PROVINCE, "01", None, ALL_SERVICES)]
    assert province_all == max(when for key, when in seen.items() if key.level is Level.COMMUNE)
    # The same times as asking Elasticsearch for one key directly.
    answer = es.search(
        index=f"{world.indices.events}",
        size=0,
        query={
            "bool": {
                "filter": [
                    {"term": {"locality.ward.code": d.ward.code}},
                    {"term": {"service.name": "otp-gateway"}},
                    {"range": {"@timestamp": {"gte": start.isoformat(), "lt": end.isoformat()}}},
                ]
            }
        },
        aggs={"last": {"max": {"field": "@timestamp"}}},
    )
    assert seen[otp].timestamp() * 1000 == answer["aggregations"]["last"]["value"]


def test_on_a_holiday_a_silence_is_judged_at_the_days_own_volume(
    es: Elasticsearch, world: World
) -> None:
    """National Day 2026 (Wednesday 2 September), the world's model (a week of working days).
    A's one-stop shop carries a tenth of its traffic (a Tết-like day) and falls silent at 09:00
    local: 2 h 15 min of silence its slot would call an outage, not at the day's own volume.
    D's carries its usual traffic and stops at 10:00 local while its OTP gateway goes on: an
    outage within 1 h 15 min (judged at half its slot, the most a holiday is trusted with)."""
    day = datetime(2026, 9, 1, 17, 0, tzinfo=UTC)  # 00:00 on 2 September in Vietnam
    assert touches_holiday(day, day + timedelta(hours=1))
    assert not touches_holiday(T, T + timedelta(hours=20))
    a, d, dotp = world.series["A"], world.series["D"], world.series["Dotp"]
    quiet_a = Series(a.ward, a.service, a.collector, a.day_rate / 10, a.night_rate / 10)
    events = [
        *traffic(quiet_a, day, day + timedelta(hours=9), seed=5),
        *traffic(d, day, day + timedelta(hours=10), seed=5),
        *traffic(dotp, day, day + timedelta(hours=12), seed=5),
        *heartbeats("col-a", "01", day, day + timedelta(hours=12)),
    ]
    # In the world's prefix (its September days are its own daily indices, dropped after).
    indices = world.indices
    try:
        assert not index_events(es, indices, iter(events), refresh=True).errors
        start = day + timedelta(hours=11)
        outages, _ = silence.find(
            es,
            indices,
            world.model,
            start,
            start + Q,
            lookback=timedelta(minutes=world.settings.anomaly_silence_lookback_minutes),
            alpha=world.settings.anomaly_alpha,
        )
        seen = last_seen(es, indices, day, start + Q)
    finally:
        days = {indices.events_for(d.date()) for d in (day, day + timedelta(hours=12))}
        es.options(ignore_status=404).indices.delete(index=",".join(sorted(days)))
    found = {o.key: o for o in outages}
    outage = found[_key(world, "D")]
    assert outage.holiday_scale == silence_holiday.HOLIDAY_MAX_SCALE
    # Only the holiday's hours are scaled: on the working day after, the usual silence.
    dkey, alpha = _key(world, "D"), world.settings.anomaly_alpha
    base = world.model.baselines[dkey]
    for at, longer in ((day + timedelta(hours=10), True), (day + 34 * HOUR, False)):
        plain = needed_silence(world.model, dkey, base, at, alpha, DAY)
        halved = needed_silence(world.model, dkey, base, at, alpha, DAY, 0.5)
        assert plain is not None
        assert halved is not None
        assert (halved > plain) is longer
    assert outage.p_value < world.settings.anomaly_alpha
    quiet = _key(world, "A")
    assert quiet not in found
    # Its slot alone would have called it an outage.
    base = world.model.baselines[quiet]
    slot = world.model.expected(quiet, base, seen[quiet], start + Q)
    assert slot / base.dispersion > math.log(1 / world.settings.anomaly_alpha)
