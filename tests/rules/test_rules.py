"""Every shipped rule fires on its must-fire events and stays quiet on its must-not events, run
against the real Elasticsearch through the production search path."""

from __future__ import annotations

import pytest
from elasticsearch import Elasticsearch

from detectors.sigma.compiler import load_rules
from detectors.sigma.testing import run_tests
from soc.es.indices import Indices

RULES = load_rules()


def test_every_rule_loads_and_ships_tests() -> None:
    assert RULES.errors == ()
    assert len(RULES.rules) >= 20
    assert [r.where for r in RULES.rules if r.tests is None] == []
    for rule in RULES.rules:
        assert rule.description, rule.where
        assert rule.falsepositives, rule.where


@pytest.mark.parametrize("rule", RULES.rules, ids=[r.name or r.id for r in RULES.rules])
def test_rule_fires_on_its_events_and_only_those(
    es: Elasticsearch, ready: Indices, rule: object
) -> None:
    from detectors.sigma.models import Rule

    assert isinstance(rule, Rule)
    results = run_tests(es, ready, rule)
    failed = [(r.expect, r.name, r.findings) for r in results if not r.passed]
    assert failed == [], f"{rule.where}: {failed}"
    assert {r.expect for r in results} == {"fire", "quiet"}
