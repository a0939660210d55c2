"""Early firing against the real Elasticsearch: an alert is written while its window is still
open, under the id the final evaluation gives, is completed (count, samples) when the window
closes, and a run ticking every few seconds ends with exactly the alerts of a run that only
evaluates closed windows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from elasticsearch import Elasticsearch

from detectors.base import iso
from detectors.sigma.compiler import RuleSet, load_rules
from detectors.sigma.runner import Engine, open_windows
from soc.alerts import service as alerts
from soc.es.indices import Indices
from soc.es.templates import setup
from soc.events.service import index_events
from tests.detectors.test_runner import T0, _alerts, _otp_fail, _scanner

RULES: RuleSet = load_rules()
S = timedelta(seconds=1)


def _engine(es: Elasticsearch, indices: Indices, *names: str, early: bool) -> Engine:
    rules = [RULES.get(n) for n in names]
    return Engine(es, indices, rules, start=T0, settle=5 * S, early=early)


@pytest.fixture
def second(es: Elasticsearch, ready: Indices) -> Indices:
    other = Indices(f"{ready.prefix}-b")
    setup(es, other)
    return other


def test_open_windows_run_from_the_last_settled_window_to_now() -> None:
    rule = RULES.get("web_scanner_user_agent")
    now = T0 + timedelta(minutes=1, seconds=3)
    got = open_windows(rule, now - 5 * S, now)
    assert [(w.start, w.end) for w in got] == [
        (T0, T0 + timedelta(minutes=1)),
        (T0 + timedelta(minutes=1), now),
    ]
    assert open_windows(rule, now - 5 * S, T0 + timedelta(minutes=1, milliseconds=200))[-1].end \
        == T0 + timedelta(minutes=1), "a window just begun is not searched yet"  # fmt: skip


def test_a_plain_alert_is_written_while_its_window_is_open_and_completed_when_it_closes(
    es: Elasticsearch, ready: Indices
) -> None:
    index_events(es, ready, [_scanner(10 * S), _scanner(30 * S)], refresh=True)
    engine = _engine(es, ready, "web_scanner_user_agent", early=True)

    report = engine.tick(T0 + 12 * S)
    assert report.alerts_created == 1
    ((alert_id, early),) = _alerts(es, ready).items()
    assert early["window"] == {"start": iso(T0), "end": iso(T0 + timedelta(minutes=1))}
    assert early["alert"]["count"] == 1
    assert early["@timestamp"] == iso(T0 + 12 * S), "written 2 s after the event was ingested"
    alerts.attach(es, ready, alert_id, "incident-1")

    report = engine.tick(T0 + 35 * S)
    assert (report.alerts_created, report.alerts_existing) == (0, 1)
    assert _alerts(es, ready)[alert_id]["alert"]["count"] == 1, "an early alert is not rewritten"

    report = engine.tick(T0 + 66 * S)  # the window [03:00, 03:01) is settled: its final search
    assert report.alerts_created == 0
    final = _alerts(es, ready)
    assert list(final) == [alert_id], "one alert for the window, never two"
    assert final[alert_id]["alert"]["count"] == 2
    assert len(final[alert_id]["evidence"]["event_ids"]) == 2
    assert final[alert_id]["@timestamp"] == early["@timestamp"], "creation time kept"
    assert final[alert_id]["incident"] == {"id": "incident-1"}, "triage state kept"
    assert final[alert_id]["alert"]["status"] == "attached"


def test_a_correlation_fires_as_soon_as_its_condition_holds(
    es: Elasticsearch, ready: Indices
) -> None:
    # Eight failures within 03:00:01-03:00:08; the rule's sliding step is 30 s, so only the
    # sub-window ending "now" sees them at 03:00:10.
    index_events(es, ready, [_otp_fail(k * S) for k in range(1, 9)], refresh=True)
    engine = _engine(es, ready, "otp_brute_force_account", early=True)
    assert engine.tick(T0 + 8 * S).alerts_created == 0, "seven are ingested by 03:00:08"
    assert engine.tick(T0 + 10 * S).alerts_created == 1
    (early,) = _alerts(es, ready).values()
    assert early["alert"]["count"] == 8
    assert early["window"]["start"] == iso(T0)


def test_ticking_every_few_seconds_ends_with_the_alerts_of_closed_window_runs(
    es: Elasticsearch, ready: Indices, second: Indices
) -> None:
    m = timedelta(minutes=1)
    events = [_scanner(k * m + 10 * S) for k in (0, 2, 3, 6)]
    events += [_otp_fail(4 * m - 40 * S + k * 10 * S) for k in range(9)]
    events += [_otp_fail(5 * m + k * 7 * S, user="citizen2") for k in range(12)]
    for indices in (ready, second):
        index_events(es, indices, events, refresh=True)
    rules = ("web_scanner_user_agent", "otp_brute_force_account")
    early = _engine(es, ready, *rules, early=True)
    for k in range(1, 9 * 6):
        early.tick(T0 + k * 10 * S + 3 * S)
    closed = _engine(es, second, *rules, early=False)
    for minute in range(1, 10):
        closed.tick(T0 + minute * m + 5 * S)
    fast, slow = _alerts(es, ready), _alerts(es, second)
    assert len(slow) >= 6
    assert fast.keys() == slow.keys()
    for key, alert in slow.items():
        assert fast[key]["alert"]["count"] == alert["alert"]["count"], alert["rule"]["name"]
        assert fast[key]["evidence"]["event_ids"] == alert["evidence"]["event_ids"]
        assert fast[key]["@timestamp"] <= alert["@timestamp"], "early alerts are never later"
