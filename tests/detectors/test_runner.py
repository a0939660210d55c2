"""The runner against the real Elasticsearch: windows evaluated once, gaps caught up with the same
alerts as an uninterrupted run, late events caught, no duplicate after a crash mid-tick, one
failing rule does not stop the others, the lease keeps a second instance on standby."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from detectors.base import iso
from detectors.sigma.compiler import RuleSet, load_rules
from detectors.sigma.models import Kind, Rule
from detectors.sigma.runner import Engine
from detectors.sigma.search import Exception_, Tuning
from detectors.sigma.state import StateStore
from soc import timeutil
from soc.es.indices import Indices
from soc.es.templates import setup
from soc.events.service import index_events

T0 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
RULES: RuleSet = load_rules()


def _event(at: timedelta, late: timedelta = timedelta(seconds=1), **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@timestamp": iso(T0 + at),
        "event": {"kind": "event", "ingested": iso(T0 + at + late)},
        "locality": {"province": {"code": "01", "name": "Thành phố Hà Nội"}},
    }
    for dotted, value in fields.items():
        node = doc
        *parents, leaf = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return doc


def _scanner(
    at: timedelta, late: timedelta = timedelta(seconds=1), ip: str = "198.51.100.7"
) -> dict[str, Any]:
    return _event(at, late, service__name="web-portal", event__category=["web"],
                  user_agent__original="sqlmap/1.8", source__ip=ip)  # fmt: skip


def _otp_fail(at: timedelta, user: str = "citizen1") -> dict[str, Any]:
    return _event(at, service__name="otp-gateway", event__action="otp-verify",
                  event__outcome="failure", user__name=user, source__ip="203.0.113.5")  # fmt: skip


def _traffic() -> list[dict[str, Any]]:
    """Ten minutes of attacks: scanners now and then, an OTP brute force across 03:04."""
    m = timedelta(minutes=1)
    s = timedelta(seconds=1)
    events = [_scanner(k * m + 10 * s, ip=f"198.51.100.{k}") for k in (0, 2, 3, 7, 9)]
    events += [_otp_fail(4 * m - 40 * s + k * 10 * s) for k in range(9)]
    return events


def _alerts(es: Elasticsearch, indices: Indices) -> dict[str, dict[str, Any]]:
    es.indices.refresh(index=indices.alerts)
    found = es.search(index=indices.alerts, size=1000, query={"match_all": {}})
    return {h["_id"]: h["_source"] for h in found["hits"]["hits"]}


def _engine(es: Elasticsearch, indices: Indices, *names: str, **kw: Any) -> Engine:
    rules = [RULES.get(n) for n in names]
    return Engine(es, indices, rules, start=T0, settle=timedelta(seconds=5), **kw)


def _ticks(engine: Engine, minutes: Iterable[int]) -> None:
    for minute in minutes:
        engine.tick(T0 + timedelta(minutes=minute, seconds=5))


@pytest.fixture
def second(es: Elasticsearch, ready: Indices) -> Indices:
    other = Indices(f"{ready.prefix}-b")
    setup(es, other)
    return other


def test_gap_drill_catch_up_gives_the_same_alerts_as_an_uninterrupted_run(
    es: Elasticsearch, ready: Indices, second: Indices
) -> None:
    rules = ("web_scanner_user_agent", "otp_brute_force_account")
    for indices in (ready, second):
        index_events(es, indices, _traffic(), refresh=True)
    _ticks(_engine(es, ready, *rules), range(1, 12))
    live = _alerts(es, ready)
    # Down after 03:01, back at 03:11, catching up at most 3 windows per tick.
    engine = _engine(es, second, *rules, max_catchup=3)
    _ticks(engine, [1])
    report = engine.tick(T0 + timedelta(minutes=11, seconds=5))
    assert report.behind[RULES.get("web_scanner_user_agent").id] == 7
    for _ in range(3):
        report = engine.tick(T0 + timedelta(minutes=11, seconds=6))
    assert all(v == 0 for v in report.behind.values())
    caught_up = _alerts(es, second)
    assert sorted(live) == sorted(caught_up)
    assert {a["rule"]["name"] for a in live.values()} == {RULES.get(n).title for n in rules}
    assert sum(a["detector"] == "sigma" for a in live.values()) == 5
    assert sum(a["detector"] == "correlation" for a in live.values()) >= 1
    checkpoints = StateStore(es, second).checkpoints([RULES.get(n).id for n in rules])
    for cp in checkpoints.values():
        assert cp.windows == 11, "every one-minute window evaluated exactly once"
        assert cp.done_until == T0 + timedelta(minutes=11)


def test_an_alert_carries_rule_locality_entity_window_count_and_samples(
    es: Elasticsearch, ready: Indices
) -> None:
    index_events(es, ready, _traffic(), refresh=True)
    _ticks(_engine(es, ready, "otp_brute_force_account"), range(1, 8))
    alerts = list(_alerts(es, ready).values())
    assert alerts
    alert = alerts[0]
    assert alert["rule"]["id"] == RULES.get("otp_brute_force_account").id
    assert alert["rule"]["level"] == "high"
    assert alert["alert"]["severity"] == "high"
    assert "attack.credential-access" in alert["rule"]["tags"]
    assert alert["locality"]["province"] == {"code": "01", "name": "Thành phố Hà Nội"}
    assert alert["entity"] == {"type": "user.name", "value": "citizen1"}
    assert alert["alert"]["count"] >= 8
    ids = alert["evidence"]["event_ids"]
    assert ids
    assert es.search(index=ready.events, query={"ids": {"values": ids}})["hits"]["total"][
        "value"
    ] == len(ids)
    start = timeutil.parse(alert["window"]["start"])
    assert start == T0 + timedelta(minutes=4), "the burst straddles 03:04 and is seen whole"


def test_late_events_are_caught_once_by_the_window_they_arrive_in(
    es: Elasticsearch, ready: Indices
) -> None:
    late = _scanner(timedelta(minutes=1), late=timedelta(minutes=6, seconds=20))
    index_events(es, ready, [late], refresh=True)
    _ticks(_engine(es, ready, "web_scanner_user_agent"), range(1, 10))
    alerts = list(_alerts(es, ready).values())
    assert len(alerts) == 1
    assert alerts[0]["window"]["start"] == iso(T0 + timedelta(minutes=7))


def test_a_crash_between_alerts_and_checkpoint_doubles_nothing(
    es: Elasticsearch, ready: Indices
) -> None:
    index_events(es, ready, _traffic(), refresh=True)
    crashing = _engine(es, ready, "web_scanner_user_agent", "otp_brute_force_account")

    def crash() -> None:
        raise RuntimeError("killed mid-tick")

    crashing.after_alerts = crash
    with pytest.raises(RuntimeError):
        crashing.tick(T0 + timedelta(minutes=10, seconds=5))
    written = _alerts(es, ready)
    assert written
    again = _engine(es, ready, "web_scanner_user_agent", "otp_brute_force_account")
    report = again.tick(T0 + timedelta(minutes=10, seconds=5))
    assert report.alerts_created == 0
    assert report.alerts_existing == len(written)
    assert _alerts(es, ready).keys() == written.keys()


def test_a_failing_rule_is_reported_and_the_others_keep_running(
    es: Elasticsearch, ready: Indices
) -> None:
    broken = Rule(id="broken-rule", title="Broken", level=RULES.rules[0].level, kind=Kind.QUERY,
                  path="rules/test/broken.yml", line=1, interval=timedelta(minutes=1),
                  query="user.name:(unclosed")  # fmt: skip
    index_events(es, ready, _traffic(), refresh=True)
    engine = Engine(es, ready, [broken, RULES.get("web_scanner_user_agent")], start=T0)
    report = engine.tick(T0 + timedelta(minutes=4, seconds=5))
    assert "broken-rule" in report.errors
    assert "rules/test/broken.yml:1" in report.errors["broken-rule"]
    assert report.alerts_created == 3
    health = StateStore(es, ready).checkpoints(["broken-rule"])["broken-rule"]
    assert health.error is not None
    assert health.done_until is None, "the failed window will be retried, not skipped"


def test_exceptions_suppress_until_they_expire_and_disabled_rules_do_not_run(
    es: Elasticsearch, ready: Indices
) -> None:
    index_events(es, ready, _traffic(), refresh=True)
    scanner = RULES.get("web_scanner_user_agent")
    store = StateStore(es, ready)
    pentest = Exception_(field="source.ip", value="198.51.100.0", reason="pentest",
                         author="admin", expires=T0 + timedelta(minutes=30))  # fmt: skip
    old = Exception_(field="source.ip", value="198.51.100.2", reason="old", author="admin",
                     expires=T0 - timedelta(days=1))  # fmt: skip
    store.save_tuning(scanner.id, Tuning(exceptions=(pentest, old)), by="admin")
    store.save_tuning(RULES.get("otp_brute_force_account").id, Tuning(enabled=False), by="admin")
    _ticks(_engine(es, ready, "web_scanner_user_agent", "otp_brute_force_account"), range(1, 11))
    alerts = list(_alerts(es, ready).values())
    assert len(alerts) == 4, "5 scanner events, one excepted, the expired exception ignored"
    assert {a["detector"] for a in alerts} == {"sigma"}


def test_a_province_threshold_override_changes_when_a_correlation_fires(
    es: Elasticsearch, ready: Indices
) -> None:
    index_events(es, ready, _traffic(), refresh=True)
    rule = RULES.get("otp_brute_force_account")
    StateStore(es, ready).save_tuning(rule.id, Tuning(thresholds=(("01", 50),)), by="admin")
    _ticks(_engine(es, ready, "otp_brute_force_account"), range(1, 11))
    assert _alerts(es, ready) == {}


def test_the_lease_keeps_a_second_instance_on_standby(es: Elasticsearch, ready: Indices) -> None:
    store = StateStore(es, ready)
    ttl = timedelta(seconds=30)
    assert store.acquire_lease("a", ttl, T0)
    assert not store.acquire_lease("b", ttl, T0 + timedelta(seconds=10))
    assert store.acquire_lease("a", ttl, T0 + timedelta(seconds=20)), "the holder renews"
    assert not store.acquire_lease("b", ttl, T0 + timedelta(seconds=45))
    assert store.acquire_lease("b", ttl, T0 + timedelta(seconds=51)), "expired: b takes over"
    assert not store.acquire_lease("a", ttl, T0 + timedelta(seconds=52))
