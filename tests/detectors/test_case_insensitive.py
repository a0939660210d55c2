"""Sigma matching is case-insensitive by spec: whatever the case in the rule and in the log, a
rule matches, on the real Elasticsearch (lowercased rule values + ``soc_lowercase`` normalizers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from detectors.base import Window
from detectors.sigma.compiler import load_rules
from detectors.sigma.models import Case
from detectors.sigma.runner import Engine
from detectors.sigma.search import Tuning
from detectors.sigma.testcases import materialise
from soc.es.indices import Indices
from soc.events.service import index_events

RULE = """title: Mixed-case rule
id: 3c4b1f0e-6a55-4f3b-9d59-2f7e2b1f9a01
status: test
description: values written in odd case on purpose
logsource:
  category: webserver
detection:
  method:
    cs-method: PoSt
  agent:
    c-useragent|contains: SQLMap
  query:
    cs-uri-query|startswith: 'ID=Union'
  condition: method and agent and query
falsepositives: [none]
level: low
"""


@pytest.mark.parametrize(
    ("method", "agent", "query"),
    [
        ("post", "sqlmap/1.8", "id=union select"),
        ("POST", "SQLMAP/1.8", "ID=UNION SELECT"),
        ("Post", "Mozilla sqlMap", "iD=UnIoN select"),
    ],
)
def test_rule_and_log_case_do_not_matter(
    es: Elasticsearch, ready: Indices, tmp_path: Path, method: str, agent: str, query: str
) -> None:
    (tmp_path / "case.yml").write_text(RULE, encoding="utf-8")
    rule = load_rules(tmp_path).rules[0]
    start = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    fields = {
        "service.name": "web-portal",
        "event.category": ["web"],
        "http.request.method": method,
        "user_agent.original": agent,
        "url.query": query,
    }
    index_events(es, ready, materialise(Case("x", (fields,)), start), refresh=True)
    engine = Engine(es, ready, [rule])
    window = Window(start, start + timedelta(minutes=1))
    [outcome] = engine.evaluate([(rule, window, Tuning())])
    assert outcome.error is None
    assert [f.count for f in outcome.findings] == [1]


def test_a_different_value_still_does_not_match(
    es: Elasticsearch, ready: Indices, tmp_path: Path
) -> None:
    (tmp_path / "case.yml").write_text(RULE, encoding="utf-8")
    rule = load_rules(tmp_path).rules[0]
    start = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    fields = {"service.name": "web-portal", "event.category": ["web"],
              "http.request.method": "GET", "user_agent.original": "sqlmap",
              "url.query": "id=union"}  # fmt: skip
    index_events(es, ready, materialise(Case("x", (fields,)), start), refresh=True)
    [outcome] = Engine(es, ready, [rule]).evaluate(
        [(rule, Window(start, start + timedelta(minutes=1)), Tuning())]
    )
    assert outcome.findings == ()
