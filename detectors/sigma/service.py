"""The rule-management service shared by the CLI (``soc rules``), and later the API and UI.

Keyword-only functions that load rules, validate, convert, test and backtest them, and store the
administrators' tuning (enable/disable, per-province thresholds, exceptions with an expiry) in
``<prefix>-state``. Must not print or parse arguments: callers present the results.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from elasticsearch import Elasticsearch

from detectors.base import aligned_windows, floor
from detectors.sigma.compiler import RuleSet, load_rules
from detectors.sigma.models import Rule
from detectors.sigma.pipeline import RULES_DIR
from detectors.sigma.runner import Engine
from detectors.sigma.search import Exception_, Options, Tuning
from detectors.sigma.testing import CaseResult, run_tests
from detectors.state import Checkpoint, StateStore
from soc.config import Settings
from soc.errors import RuleError
from soc.es.indices import Indices
from soc.es.templates import setup


def rules_dir(settings: Settings) -> Path:
    return settings.rules_dir or RULES_DIR


def load(*, settings: Settings) -> RuleSet:
    return load_rules(rules_dir(settings))


def options(settings: Settings) -> Options:
    return Options(
        lookback=timedelta(seconds=settings.detect_lookback),
        correlation_lookback=timedelta(seconds=settings.detect_correlation_lookback),
    )


def engine(*, es: Elasticsearch, settings: Settings, rules: list[Rule]) -> Engine:
    return Engine(
        es, Indices(settings.index_prefix), rules, options=options(settings),
        settle=timedelta(seconds=settings.detect_settle), max_catchup=settings.detect_max_catchup,
        chunk=settings.detect_msearch_chunk, early=settings.detect_early,
    )  # fmt: skip


def test_rule(*, es: Elasticsearch, settings: Settings, rule: Rule) -> list[CaseResult]:
    """Run a rule's test events in a scratch index prefix, deleted afterwards."""
    scratch = Indices(f"{settings.index_prefix}-ruletest-{uuid.uuid4().hex[:8]}")
    setup(es, scratch)
    try:
        return run_tests(es, scratch, rule)
    finally:
        names = list(es.indices.get(index=f"{scratch.prefix}-*", allow_no_indices=True))
        if names:
            es.indices.delete(index=",".join(names), ignore_unavailable=True)
        quiet = es.options(ignore_status=404)
        quiet.indices.delete_index_template(name=f"{scratch.prefix}-*")
        for item in quiet.cluster.get_component_template(name=f"{scratch.prefix}-*").get(
            "component_templates", []
        ):
            quiet.cluster.delete_component_template(name=item["name"])


@dataclass(frozen=True, slots=True)
class Backtest:
    rule_id: str
    windows: int
    alerts: int
    by_locality: tuple[tuple[str, int], ...]


def backtest(
    *,
    es: Elasticsearch,
    settings: Settings,
    rule: Rule,
    since: timedelta,
    now: datetime | None = None,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Backtest:
    """How many alerts ``rule`` would have raised over ``since``, per locality; writes nothing."""
    now = now or datetime.now(UTC)
    runner = engine(es=es, settings=settings, rules=[rule])
    runner.options = replace(runner.options, correlation_lookback=timedelta(0))
    windows = list(aligned_windows(now - since, now, rule.interval))
    tuning = StateStore(es, runner.indices).tuning(rule.id)
    alerts: dict[str, str] = {}
    step = runner.chunk
    for offset in range(0, len(windows), step):
        part = windows[offset : offset + step]
        for outcome in runner.evaluate([(rule, w, tuning) for w in part]):
            if outcome.error:
                raise RuleError(outcome.error, rule.path, rule.line)
            for alert in runner.alerts([outcome], now):
                alerts[alert.id] = alert.place.province_name if alert.place else "(no locality)"
        progress(min(offset + step, len(windows)), len(windows))
    counts = Counter(alerts.values()).most_common()
    return Backtest(rule.id, len(windows), len(alerts), tuple(counts))


# ----------------------------------------------------------------------------- tuning
def _store(es: Elasticsearch, settings: Settings) -> StateStore:
    return StateStore(es, Indices(settings.index_prefix))


def set_enabled(*, es: Elasticsearch, settings: Settings, rule: Rule, on: bool, by: str) -> None:
    """Run or stop a rule. Re-enabled, it starts from now: the disabled period is not replayed
    (it was disabled to stop its alerts; ``soc rules backtest`` shows what it would have said)."""
    store = _store(es, settings)
    current = store.tuning(rule.id)
    if on and not current.enabled:
        now = datetime.now(UTC)
        checkpoint = store.checkpoints([rule.id])[rule.id]
        store.save_checkpoints([replace(checkpoint, done_until=floor(now, rule.interval))], now)
    store.save_tuning(rule.id, replace(current, enabled=on), by=by)


def set_threshold(
    *, es: Elasticsearch, settings: Settings, rule: Rule, province: str, count: int | None, by: str
) -> None:
    """Override (or, with ``count=None``, reset) a correlation's threshold for one province."""
    if not rule.kind.is_correlation:
        raise RuleError(f"rule {rule.title!r} has no threshold (not a correlation)", rule.path)
    from soc.localities import catalogue

    code = catalogue().province(province).code
    store = _store(es, settings)
    current = store.tuning(rule.id)
    kept = [(c, n) for c, n in current.thresholds if c != code]
    if count is not None:
        kept.append((code, count))
    store.save_tuning(rule.id, replace(current, thresholds=tuple(sorted(kept))), by=by)


def add_exception(
    *, es: Elasticsearch, settings: Settings, rule: Rule, exception: Exception_
) -> None:
    from detectors.sigma.pipeline import is_known

    if not is_known(exception.field):
        raise RuleError(f"unknown field {exception.field!r} for an exception", rule.path)
    if exception.expires <= datetime.now(UTC):
        raise RuleError("an exception needs an expiry in the future", rule.path)
    if not exception.reason.strip():
        raise RuleError("an exception needs a reason", rule.path)
    store = _store(es, settings)
    current = store.tuning(rule.id)
    store.save_tuning(rule.id, replace(current, exceptions=(*current.exceptions, exception)),
                      by=exception.author)  # fmt: skip


def tuning(*, es: Elasticsearch, settings: Settings, rule: Rule) -> Tuning:
    return _store(es, settings).tuning(rule.id)


def health(*, es: Elasticsearch, settings: Settings, rules: RuleSet) -> dict[str, Checkpoint]:
    return _store(es, settings).checkpoints([r.id for r in rules.runnable])


# Validators that download MITRE data at first use: this machine (and many SOCs) has no internet.
_OFFLINE_SKIP = {"attacktag", "d3_fendtag"}


def lint(*, settings: Settings) -> list[str]:
    """pySigma's own validators over the plain rules: ``file: validator: what is wrong``."""
    from sigma.collection import SigmaCollection
    from sigma.rule import SigmaRule
    from sigma.validation import SigmaValidator
    from sigma.validators.core import validators

    validator = SigmaValidator([v for n, v in validators.items() if n not in _OFFLINE_SKIP])
    files: list[str | Path] = sorted(
        str(p) for p in rules_dir(settings).rglob("*.yml") if "pipeline" not in p.parts
    )
    collection = SigmaCollection.load_ruleset(files, collect_errors=True)
    plain = iter([r for r in collection.rules if isinstance(r, SigmaRule)])
    issues = []
    for issue in validator.validate_rules(plain):
        where = ", ".join(str(r.source) for r in issue.rules if r.source) or "?"
        issues.append(f"{where}: {type(issue).__name__} ({issue.severity.name.lower()}): {issue}")
    return issues
