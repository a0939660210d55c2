"""Every shipped rule fires on its must-fire events and stays quiet on its must-not events, at low
and at high volume, run against the real Elasticsearch through the production search path."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch

from detectors.sigma.compiler import load_rules
from detectors.sigma.models import Rule
from detectors.sigma.testing import clear_events, run_tests
from soc.es.indices import Indices
from soc.es.templates import setup, teardown

RULES = load_rules()

#: Every rule's tests hold, among its fire and among its quiet cases, one named ``LOW - ...`` (a
#: quiet commune at night) and one named ``HIGH - ...`` (Hà Nội's busiest hour) (rules/README.md).
VOLUMES = ("LOW - ", "HIGH - ")


def test_every_rule_loads_and_ships_tests() -> None:
    assert RULES.errors == ()
    assert len(RULES.rules) >= 20
    assert [r.where for r in RULES.rules if r.tests is None] == []
    for rule in RULES.rules:
        assert rule.description, rule.where
        assert rule.falsepositives, rule.where


def test_every_rule_is_tested_at_low_and_at_high_volume() -> None:
    missing = []
    for rule in RULES.rules:
        assert rule.tests is not None, rule.where
        for kind, cases in (("fire", rule.tests.fire), ("quiet", rule.tests.quiet)):
            for volume in VOLUMES:
                if not any(case.name.startswith(volume) for case in cases):
                    missing.append(f"{rule.tests.path}: no `{kind}` case named '{volume}...'")
    assert missing == [], "\n".join(missing)


@pytest.fixture(scope="module")
def scratch(es: Elasticsearch) -> Iterator[Indices]:
    """One scratch prefix for all the rules, as ``soc rules test`` (installing soc's templates is
    most of a small rule's time); each rule's events are deleted after it (``clean``)."""
    indices = Indices(f"t{uuid.uuid4().hex[:10]}")
    setup(es, indices)
    yield indices
    teardown(es, indices.prefix)


@pytest.fixture
def clean(es: Elasticsearch, scratch: Indices) -> Iterator[Indices]:
    yield scratch
    clear_events(es, scratch)


@pytest.mark.parametrize("rule", RULES.rules, ids=[r.name or r.id for r in RULES.rules])
def test_rule_fires_on_its_events_and_only_those(
    es: Elasticsearch, clean: Indices, rule: Rule
) -> None:
    results = run_tests(es, clean, rule)
    failed = [(r.expect, r.name, r.findings) for r in results if not r.passed]
    assert failed == [], f"{rule.where}: {failed}"
    assert {r.expect for r in results} == {"fire", "quiet"}
