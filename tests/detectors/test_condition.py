"""A rule's condition as pySigma parsed it: typed parts, leading wildcards decided from pySigma's
typed values, and a negation searched from the parts finds what the whole query finds."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

from elasticsearch import Elasticsearch
from sigma.backends.elasticsearch.elasticsearch_lucene import LuceneBackend
from sigma.rule import SigmaRule

from detectors.base import iso
from detectors.sigma.compiler import load_rules
from detectors.sigma.condition import And, Leaf, Local, Not, Or, condition_tree
from detectors.sigma.pipeline import load_pipeline
from detectors.sigma.runner import Engine
from soc.es.indices import Indices
from soc.events.service import index_events
from tests.detectors.test_shared_search import PROVINCES, SECOND, T0, _evaluate

RULE = """
title: Typed parts
id: 3f0b6d0e-5a4e-4f7e-9a43-0c1c9b7e6a11
level: high
logsource: {category: webserver}
detection:
  injection:
    cs-uri-query|contains: 'id=1'
  agents:
    cs-user-agent|endswith: ['SQLMap', '.exe']
  prefix:
    cs-uri-query|startswith: ['a', '*b']
  other:
    cs-uri-query|contains: ['a?b', 'đ']
  address:
    c-ip|contains: '10'
  post:
    cs-method: 'POST'
  condition: (injection or agents) and not post or prefix or other or address
"""


def test_the_parts_are_pysigmas_condition_tree() -> None:
    rule = SigmaRule.from_yaml(RULE)
    backend = LuceneBackend(processing_pipeline=load_pipeline())
    (query,) = backend.convert_rule(rule)
    agents = (
        Local("user_agent.original", "sqlmap", False),
        Local("user_agent.original", ".exe", False),
    )
    assert condition_tree(backend, rule) == And((
        Leaf("event.category:web"),  # the pipeline's condition for web server logs
        Or((
            And((
                Or((
                    Leaf(r"url.query:*id\=1*", (Local("url.query", "id=1", contains=True),)),
                    Leaf("user_agent.original:(*sqlmap OR *.exe)", agents),
                )),
                Not(Leaf("http.request.method:post")),
            )),
            Leaf("url.query:(a* OR *b*)"),  # a prefix: cheap for Lucene anyway
            Leaf("url.query:(*a?b* OR *đ*)"),  # one-character wildcard; beyond ASCII: Lucene's
            Leaf("source.ip:*10*"),  # not a lowercase keyword
        )),
    ))  # fmt: skip
    assert query.startswith("event.category:web AND ")


def test_a_negation_scanned_from_its_parts_finds_what_the_whole_query_finds(
    es: Elasticsearch, ready: Indices, tmp_path: Path
) -> None:
    (tmp_path / "rule.yml").write_text(RULE, encoding="utf-8")
    rules = load_rules(tmp_path).runnable
    assert any(isinstance(part, Not) for part in _parts(rules[0].parts))
    rng = random.Random(5)
    events = []
    for _ in range(300):
        at = T0 + timedelta(seconds=rng.uniform(0, 240))
        events.append({
            "@timestamp": iso(at),
            "event": {"kind": "event", "ingested": iso(at + SECOND), "category": ["web"]},
            "locality": {"province": {"code": rng.choice(sorted(PROVINCES))}},
            "source": {"ip": rng.choice(["10.0.0.1", "203.0.113.10", "198.51.100.7"])},
            "http": {"request": {"method": rng.choice(["GET", "POST"])}},
            "url": {"query": rng.choice(["id=1", "a=2", "x=1&b", "q=A?B", "page=1"])},
            "user_agent": {"original": rng.choice(["Mozilla/5.0", "x SQLMap", "run.EXE"])},
        })  # fmt: skip
    index_events(es, ready, events, refresh=True)
    aggregations = Engine(es, ready, rules)
    aggregations.scan_limit = 0
    expected = _evaluate(aggregations, rules=rules)
    assert sum(len(found) for *_, found in expected) >= 10
    assert _evaluate(Engine(es, ready, rules), rules=rules) == expected


def _parts(node: object) -> list[object]:
    if isinstance(node, And | Or):
        return [node, *(p for part in node.parts for p in _parts(part))]
    return [node, *(_parts(node.part) if isinstance(node, Not) else [])]
