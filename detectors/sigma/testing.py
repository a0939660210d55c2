"""Run a rule's shipped test events against a real Elasticsearch (``soc rules test``, the tests).

Each case is indexed at its own time, hours apart from the others (a ratio rule's cases: its
baseline period apart, each with its own history), then evaluated by the same
:class:`~detectors.sigma.runner.Engine` code path as production over interval-aligned windows
that cover it. A ``fire`` case passes when it yields at least one finding, a ``quiet`` case when it
yields none. Nothing is written to the alerts index. Must not be pointed at production indices:
callers give it a scratch index prefix (``run_each`` tests rules in turn in one, deleted after).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from elasticsearch import Elasticsearch

from detectors.base import Window, aligned_windows, floor
from detectors.sigma.models import Case, Rule
from detectors.sigma.runner import Engine
from detectors.sigma.search import Options, Tuning
from detectors.sigma.testcases import materialise
from soc import timeutil
from soc.errors import RuleError
from soc.es.indices import Indices, Kind
from soc.es.templates import setup, teardown
from soc.events.service import index_events

_CASE_GAP = timedelta(hours=6)


@dataclass(frozen=True, slots=True)
class CaseResult:
    rule_id: str
    expect: str
    name: str
    findings: int

    @property
    def passed(self) -> bool:
        return (self.findings > 0) == (self.expect == "fire")


def run_tests(
    es: Elasticsearch, indices: Indices, rule: Rule, tuning: Tuning | None = None
) -> list[CaseResult]:
    """Index each case of ``rule`` and report whether it fired as expected."""
    if rule.tests is None:
        raise RuleError(f"rule {rule.title!r} ships no tests file (<rule>.tests.yaml)", rule.path)
    engine = Engine(es, indices, [rule], options=Options())
    cases = [("fire", c) for c in rule.tests.fire] + [("quiet", c) for c in rule.tests.quiet]
    gap = _CASE_GAP
    if rule.ratio is not None:
        # A ratio rule learns its baseline from the store: each case (with the history it
        # ships as events before its start) must be out of the others' baseline period.
        gap = rule.ratio.baseline + timedelta(days=2)
    base = floor(datetime.now(UTC) - timedelta(days=2) - len(cases) * gap, timedelta(days=1))
    results = []
    for number, (expect, case) in enumerate(cases):
        start = base + number * gap
        count = evaluate_case(es, indices, engine, rule, case, start, tuning or Tuning())
        results.append(CaseResult(rule.id, expect, case.name, count))
    return results


def run_each(
    es: Elasticsearch, prefix: str, rules: Sequence[Rule]
) -> Iterator[tuple[Rule, list[CaseResult]]]:
    """Each rule's results, the rules tested in turn in one scratch prefix (soc's templates are
    installed once: most of a small rule's time); each rule's events are deleted before the
    next rule's, and the whole prefix after the last."""
    scratch = Indices(prefix)
    setup(es, scratch)
    try:
        for rule in rules:
            try:
                yield rule, run_tests(es, scratch, rule)
            finally:
                clear_events(es, scratch)
    finally:
        teardown(es, prefix)


def clear_events(es: Elasticsearch, indices: Indices) -> None:
    """Delete the events indices of a scratch prefix, so the next rule tested there sees only
    its own cases (the templates stay)."""
    names = list(es.indices.get(index=indices.pattern(Kind.EVENTS), allow_no_indices=True))
    if names:
        es.indices.delete(index=",".join(names))


def evaluate_case(
    es: Elasticsearch,
    indices: Indices,
    engine: Engine,
    rule: Rule,
    case: Case,
    start: datetime,
    tuning: Tuning,
) -> int:
    events = materialise(case, start)
    written = index_events(es, indices, events, refresh=True)
    if written.errors:
        raise RuleError(f"test events rejected: {written.errors[0]}", rule.path, rule.line)
    last = max(timeutil.parse(e["event"]["ingested"]) for e in events)
    reach = last + (rule.timespan or timedelta()) + 2 * rule.interval
    windows: list[Window] = list(aligned_windows(start, reach, rule.interval))
    outcomes = engine.evaluate([(rule, w, tuning) for w in windows])
    for outcome in outcomes:
        if outcome.error:
            raise RuleError(outcome.error, rule.path, rule.line)
    # A window re-evaluated by the look-back finds the same alert again; count distinct alerts.
    return len({(f.window, tuple(sorted(f.group.items()))) for o in outcomes for f in o.findings})
