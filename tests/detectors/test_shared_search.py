"""The shared searches give exactly the findings of per-rule aggregations, against the real
Elasticsearch: plain rules evaluated from one scan of the window's events (and the fallback to
aggregations when a window holds more events than a scan reads), and correlation samples read
afterwards for the findings alone."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from detectors.base import Window, iso
from detectors.sigma.compiler import load_rules
from detectors.sigma.condition import leaves
from detectors.sigma.models import Kind, Rule
from detectors.sigma.runner import Engine, Outcome
from detectors.sigma.search import Exception_, Tuning
from soc.es.indices import Indices
from soc.events.service import index_events

T0 = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
RULES = load_rules().runnable
PROVINCES: dict[str, list[str | None]] = {
    "01": ["00004", "00008", None],
    "79": ["26734", None],
    "48": [None],
}


def _events(count: int, users: int = 3) -> list[dict[str, Any]]:
    """Four minutes of mixed traffic where every shipped rule has something to find: scanners,
    denied and failing requests, OTP and VNeID failures, across provinces and wards, some late."""
    rng = random.Random(7)
    events = []
    for n in range(count):
        at = T0 + timedelta(seconds=rng.uniform(0, 240))
        province = rng.choice(sorted(PROVINCES))
        locality: dict[str, Any] = {"province": {"code": province}}
        ward = rng.choice(PROVINCES[province])
        if ward:
            locality["ward"] = {"code": ward}
        doc: dict[str, Any] = {
            "@timestamp": iso(at),
            "event": {"kind": "event", "ingested": iso(at + rng.choice([SECOND, 70 * SECOND]))},
            "locality": locality,
            "source": {"ip": f"203.0.113.{rng.randrange(4)}"},
            "user": {"name": f"citizen{rng.randrange(users)}"},
        }
        if n % 3:
            doc["service"] = {"name": rng.choice(["web-portal", "one-stop-shop"])}
            doc["event"]["category"] = ["web"]
            doc["http"] = {"response": {"status_code": rng.choice([200, 401, 403, 500, 503])}}
            doc["user_agent"] = {"original": rng.choice(["Mozilla/5.0", "sqlmap/1.8", "Nikto"])}
        else:
            service = rng.choice(["otp-gateway", "vneid"])
            doc["service"] = {"name": service}
            doc["event"].update(
                category=["authentication"],
                action="otp-verify" if service == "otp-gateway" else "login",
                outcome=rng.choice(["failure", "failure", "success"]),
            )
        events.append(doc)
    return events


def _evaluate(
    engine: Engine, tuning: Tuning | None = None, rules: Sequence[Rule] = RULES
) -> list[Any]:
    tuning = tuning or Tuning()
    windows = [Window(T0 + timedelta(minutes=m), T0 + timedelta(minutes=m + 1)) for m in range(6)]
    outcomes = engine.evaluate([(rule, w, tuning) for w in windows for rule in rules])
    return [_shape(o) for o in outcomes]


def _shape(outcome: Outcome) -> tuple[Any, ...]:
    assert outcome.error is None, outcome.error
    found = [(f.window, sorted(f.group.items()), f.count, [s["_id"] for s in f.samples],
              [s.get("locality") for s in f.samples]) for f in outcome.findings]  # fmt: skip
    return outcome.rule.id, outcome.window, found


def test_a_scan_of_the_window_finds_what_per_rule_aggregations_find(
    es: Elasticsearch, ready: Indices
) -> None:
    index_events(es, ready, _events(600), refresh=True)
    scanning = Engine(es, ready, RULES)
    aggregations = Engine(es, ready, RULES)
    aggregations.scan_limit = 0
    busy = Engine(es, ready, RULES)  # every window holds more matches than a scan reads
    busy.scan_limit = 5
    expected = _evaluate(aggregations)
    plain = [o for o in expected if any(r.id == o[0] and not r.kind.is_correlation for r in RULES)]
    assert sum(len(found) for _, _, found in plain) > 20, "the traffic makes plain findings"
    assert any(len(s) == 5 for _, _, found in plain for *_, s, _ in found), "full samples"
    assert _evaluate(scanning) == expected
    assert _evaluate(busy) == expected


def test_correlations_counted_from_a_scan_equal_their_aggregations(
    es: Elasticsearch, ready: Indices
) -> None:
    """Every kind of correlation (event_count, value_count, temporal), with an exception and a
    per-province threshold, counted in Python from one scan of its events: the same findings,
    counts and samples as the aggregations under sliding sub-windows."""
    index_events(es, ready, _events(900, users=40), refresh=True)
    index_events(es, ready, _events(300), refresh=True)
    expires = T0 + timedelta(days=1)
    tunings = [
        Tuning(),
        Tuning(thresholds=(("01", 2), ("79", 40))),
        Tuning(exceptions=(Exception_("source.ip", "203.0.113.1", "pentest", "admin", expires),)),
    ]
    correlations = [r for r in RULES if r.kind.is_correlation]
    aggregations = Engine(es, ready, correlations)
    aggregations.scan_limit = 0
    scanning = Engine(es, ready, correlations)
    kinds: set[Kind] = set()
    for tuning in tunings:
        expected = _evaluate(aggregations, tuning)
        assert _evaluate(scanning, tuning) == expected
        kinds |= {r.kind for r in correlations for rid, _, found in expected
                  if rid == r.id and found}  # fmt: skip
    assert kinds == {Kind.EVENT_COUNT, Kind.VALUE_COUNT, Kind.TEMPORAL}


def test_correlation_samples_read_for_the_findings_equal_those_read_with_the_counts(
    es: Elasticsearch, ready: Indices
) -> None:
    index_events(es, ready, _events(600), refresh=True)
    engine = Engine(es, ready, RULES)
    later = _evaluate(engine)
    # A threshold override for a province without events changes no count, but makes every
    # correlation not grouped by province read its samples in its main search, as before.
    inline = _evaluate(engine, Tuning(thresholds=(("zz", 10**6),)))
    correlations = {r.id for r in RULES if r.kind.is_correlation}
    found = [f for rule_id, _, fs in later if rule_id in correlations for f in fs]
    assert len(found) >= 5, "the traffic makes correlation findings"
    assert all(samples for *_, samples, _ in found)
    assert later == inline


QUERIES = [
    "id=1",
    "q=1' UNION SELECT password FROM users",
    "f=../../etc/passwd",
    "q=' OR 1=1",
    "p=..%2F..%2Fwin.ini",
    "q=SLEEP(5)",
    "q=union",
    "page=2",
    "x=Information_Schema",
]
AGENTS = ["Mozilla/5.0", "SQLMap/1.8", "python-requests nikto", "Nuclei - open source", "curl"]


def test_leading_wildcards_matched_on_doc_values_find_what_lucene_finds(
    es: Elasticsearch, ready: Indices
) -> None:
    """``contains`` patterns on URL queries and user agents (mixed case, escaped characters,
    field groups) are matched in Python on the scan's doc values: the same findings as Lucene's
    wildcard queries in the aggregations."""
    rng = random.Random(11)
    events = []
    for _ in range(500):
        at = T0 + timedelta(seconds=rng.uniform(0, 240))
        events.append({
            "@timestamp": iso(at),
            "event": {"kind": "event", "ingested": iso(at + SECOND), "category": ["web"]},
            "service": {"name": "web-portal"},
            "locality": {"province": {"code": rng.choice(sorted(PROVINCES))}},
            "source": {"ip": f"203.0.113.{rng.randrange(4)}"},
            "http": {"response": {"status_code": rng.choice([200, 403, 500])}},
            "url": {"query": rng.choice(QUERIES), "path": rng.choice(["/", "/../etc/passwd"])},
            "user_agent": {"original": rng.choice(AGENTS)},
        })  # fmt: skip
    index_events(es, ready, events, refresh=True)
    local = [
        r for r in RULES if not r.kind.is_correlation and any(p.local for p in leaves(r.parts))
    ]
    assert len(local) >= 3, "the web attack rules have leading-wildcard parts"
    aggregations = Engine(es, ready, local)
    aggregations.scan_limit = 0
    expected = _evaluate(aggregations)
    assert sum(len(found) for *_, found in expected) >= 10
    finding = {rule_id for rule_id, _, found in expected if found}
    assert {r.id for r in local} <= finding, "every such rule finds something"
    assert _evaluate(Engine(es, ready, local)) == expected
