"""The shared searches give exactly the findings of per-rule aggregations, against the real
Elasticsearch: plain rules evaluated from one scan of the window's events (and the fallback to
aggregations when a window holds more events than a scan reads), and correlation samples read
afterwards for the findings alone."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from detectors.base import Window, iso
from detectors.sigma.compiler import load_rules
from detectors.sigma.runner import Engine, Outcome
from detectors.sigma.search import Tuning, decompose
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


def _events(count: int) -> list[dict[str, Any]]:
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
            "user": {"name": f"citizen{rng.randrange(3)}"},
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


def _evaluate(engine: Engine, tuning: Tuning | None = None) -> list[Any]:
    tuning = tuning or Tuning()
    windows = [Window(T0 + timedelta(minutes=m), T0 + timedelta(minutes=m + 1)) for m in range(6)]
    outcomes = engine.evaluate([(rule, w, tuning) for w in windows for rule in RULES])
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


def test_queries_are_split_into_parts_only_where_the_meaning_is_certain() -> None:
    web = "event.category:web"
    assert decompose(f"{web} AND (a:*x* AND b:200)") == ("AND", [web, ("AND", ["a:*x*", "b:200"])])
    assert decompose("(a:1 OR b:2)") == ("OR", ["a:1", "b:2"])
    # Mixed operators follow Lucene's precedence: kept whole, Elasticsearch parses them.
    assert decompose("a:1 AND b:2 OR c:3") == "a:1 AND b:2 OR c:3"
    # A negated clause stays with its parentheses, and a level with a bare NOT stays whole.
    assert decompose("a:1 AND (NOT b:2)") == ("AND", ["a:1", "(NOT b:2)"])
    assert decompose("a:1 AND NOT b:2") == "a:1 AND NOT b:2"
    # Operators inside a field group, escapes, quotes and regular expressions are not split.
    assert decompose("a:(x OR y) AND b:1") == ("AND", ["a:(x OR y)", "b:1"])
    assert decompose(r"a:x\ AND\ y OR b:1") == ("OR", [r"a:x\ AND\ y", "b:1"])
    assert decompose('a:"x AND y" OR b:/p( AND )q/') == ("OR", ['a:"x AND y"', "b:/p( AND )q/"])
    assert decompose("a:(x AND b:1") == "a:(x AND b:1"
