"""The rule-management service shared by the CLI (``soc rules``), and later the API and UI.

Keyword-only functions that load rules, validate, convert, test and backtest them, and store the
administrators' tuning (enable/disable, per-province thresholds, exceptions with an expiry) in
``<prefix>-state``. Must not print or parse arguments: callers present the results.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from elasticsearch import Elasticsearch

from detectors.base import Window, aligned_windows, floor
from detectors.sigma.alerting import to_alert
from detectors.sigma.compiler import RuleSet, check_shape, load_rules
from detectors.sigma.models import Kind, Rule
from detectors.sigma.pipeline import RULES_DIR
from detectors.sigma.runner import Engine
from detectors.sigma.search import Exception_, Finding, Options, Tuning, parts, resolution
from detectors.sigma.search import needs_samples as _needs_samples
from detectors.sigma.sources import LocatingEngine, load_sources
from detectors.sigma.state import Checkpoint, StateStore
from detectors.sigma.testing import CaseResult, run_each
from soc.alerts.models import Alert
from soc.config import Settings
from soc.errors import RuleError
from soc.es.indices import Indices


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
    """The engine for ``rules``, which must search the same indices (``engines`` splits them)."""
    sources = load_sources(rules_dir(settings))
    patterns = {sources.patterns(r) for r in rules}
    if len(patterns) > 1:
        raise RuleError("these rules search different indices: use service.engines()")
    found = patterns.pop() if patterns else None
    kind = Engine if found is None else LocatingEngine
    made = kind(
        es, Indices(settings.index_prefix, found or ()), rules, options=options(settings),
        settle=timedelta(seconds=settings.detect_settle), max_catchup=settings.detect_max_catchup,
        chunk=settings.detect_msearch_chunk, early=settings.detect_early,
    )  # fmt: skip
    if isinstance(made, LocatingEngine):
        made.inventory = sources.inventory
    return made


def engines(*, es: Elasticsearch, settings: Settings, rules: list[Rule]) -> list[Engine]:
    """One engine per set of searched indices (rules/sources.yaml), soc's own events first."""
    sources = load_sources(rules_dir(settings))
    return [engine(es=es, settings=settings, rules=group) for _, group in sources.partition(rules)]


def test_rule(*, es: Elasticsearch, settings: Settings, rule: Rule) -> list[CaseResult]:
    """Run a rule's test events in a scratch index prefix, deleted afterwards."""
    ((_, results),) = test_rules(es=es, settings=settings, rules=[rule])  # run to the teardown
    return results


def test_rules(
    *, es: Elasticsearch, settings: Settings, rules: Sequence[Rule]
) -> Iterator[tuple[Rule, list[CaseResult]]]:
    """Run each rule's test events in turn in one scratch index prefix (``run_each``)."""
    return run_each(es, f"{settings.index_prefix}-ruletest-{uuid.uuid4().hex[:8]}", rules)


@dataclass(frozen=True, slots=True)
class Backtest:
    """A backtest's answer: the alerts the rule would have raised and the events it matched
    (218 SQL-injection lines in one window are one alert but 218 matched events)."""

    rule_id: str
    windows: int
    alerts: int
    by_locality: tuple[tuple[str, int], ...]
    events: int = 0
    sample: tuple[dict[str, Any], ...] = ()


#: Matched events shown as a backtest's sample, and the fields shown of each.
BACKTEST_SAMPLE = 5
_SAMPLE_SOURCE = [
    "@timestamp", "event.dataset", "service.name", "host.name", "source.ip", "http.request.method",
    "url.original", "http.response.status_code", "user.name", "user_agent.original",
    "event.action", "event.outcome", "locality.province.name", "locality.ward.name", "message",
]  # fmt: skip


def matched_events(
    *, es: Elasticsearch, indices: Indices, rule: Rule, tuning: Tuning, start: datetime,
    end: datetime,
) -> tuple[int, tuple[dict[str, Any], ...]]:  # fmt: skip
    """How many events ingested in ``[start, end)`` the rule's query matches (a correlation: any
    of its rules' queries), exceptions active at ``end`` left out, and the first few of them."""
    must_not = [{"term": {e.field: e.value}} for e in tuning.active_exceptions(end)]
    query = {"bool": {
        "filter": [
            {"range": {"event.ingested": {"gte": start.isoformat(), "lt": end.isoformat()}}},
            {"query_string": {"query": rule.combined_query, "analyze_wildcard": True}},
        ],
        "must_not": must_not,
    }}  # fmt: skip
    answer = es.search(
        index=indices.events, query=query, size=BACKTEST_SAMPLE, track_total_hits=True,
        sort=[{"@timestamp": "asc"}], source_includes=_SAMPLE_SOURCE, ignore_unavailable=True,
        allow_no_indices=True,
    )  # fmt: skip
    hits = answer["hits"]
    sample = tuple({"_id": h["_id"], "_index": h["_index"], **h["_source"]} for h in hits["hits"])
    return int(hits["total"]["value"]), sample


def backtest(
    *,
    es: Elasticsearch,
    settings: Settings,
    rule: Rule,
    since: timedelta,
    now: datetime | None = None,
    progress: Callable[[int, int], None] = lambda done, total: None,
    tuning: Tuning | None = None,
) -> Backtest:
    """How many alerts ``rule`` would have raised over ``since``, per locality; writes nothing.

    ``tuning`` tries a change before it is saved (a threshold, an exception); by default the
    rule's stored tuning.

    The answer is the live engine's (one evaluation per window, as after a catch-up), found
    with few searches: a plain rule's windows come from one paged ``composite`` aggregation
    (window x province x ward) per stretch of constant exceptions; a correlation's candidate
    windows from date_range searches of ``CHUNK_RANGES`` sub-windows each. Only windows
    where the shortcut could differ from the engine (an event stamped more than the look-back
    before, or after, its window; a correlation finding) are then evaluated window by window.
    """
    now = now or datetime.now(UTC)
    runner = engine(es=es, settings=settings, rules=[rule])
    runner.options = replace(runner.options, correlation_lookback=timedelta(0))
    windows = list(aligned_windows(now - since, now, rule.interval))
    tuning = tuning if tuning is not None else StateStore(es, runner.indices).tuning(rule.id)
    alerts: dict[str, str] = {}
    if rule.kind.is_correlation:
        exact = _correlation_candidates(runner, rule, tuning, windows, progress)
    else:
        exact = _plain_backtest(runner, rule, tuning, windows, now, alerts, progress)
    step = runner.chunk
    for offset in range(0, len(exact), step):
        part = exact[offset : offset + step]
        for outcome in runner.evaluate([(rule, w, tuning) for w in part]):
            if outcome.error:
                raise RuleError(outcome.error, rule.path, rule.line)
            for alert in runner.alerts([outcome], now):
                alerts[alert.id] = _locality(alert)
    progress(len(windows), len(windows))
    counts = Counter(alerts.values()).most_common()
    first = windows[0].start if windows else now
    events, sample = matched_events(es=es, indices=runner.indices, rule=rule, tuning=tuning,
                                    start=first, end=now)  # fmt: skip
    return Backtest(rule.id, len(windows), len(alerts), tuple(counts), events, sample)


#: Sub-windows (date_range buckets) per search of a correlation backtest.
CHUNK_RANGES = 120
_PAGE = 5000


def _locality(alert: Alert) -> str:
    return alert.place.province_name if alert.place else "(no locality)"


def _stretches(windows: list[Window], tuning: Tuning) -> list[list[Window]]:
    """Consecutive windows sharing the same active exceptions (an exception ends mid-range)."""
    stretches: list[list[Window]] = []
    active: list[Exception_] | None = None
    for window in windows:
        now_active = tuning.active_exceptions(window.end)
        if now_active != active or not stretches:
            stretches.append([])
            active = now_active
        stretches[-1].append(window)
    return stretches


def _plain_backtest(
    runner: Engine, rule: Rule, tuning: Tuning, windows: list[Window], now: datetime,
    alerts: dict[str, str], progress: Callable[[int, int], None],
) -> list[Window]:  # fmt: skip
    """Alerts of a plain rule from composite buckets; returns the windows to evaluate exactly."""
    lookback_ms = runner.options.lookback.total_seconds() * 1000
    step_ms = int(rule.interval.total_seconds() * 1000)
    every = f"{step_ms}ms"  # fixed intervals count from the epoch, like the engine's windows
    recheck: set[datetime] = set()
    for stretch in _stretches(windows, tuning):
        span = Window(stretch[0].start, stretch[-1].end)
        found = parts(rule, span, tuning, runner.options)
        query = {"bool": {"filter": [*found.scope, found.match]}}
        sources = [
            {"w": {"date_histogram": {"field": "event.ingested", "fixed_interval": every}}},
            {"p": {"terms": {"field": "locality.province.code", "missing_bucket": True}}},
            {"d": {"terms": {"field": "locality.ward.code", "missing_bucket": True}}},
        ]
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {"size": _PAGE, "sources": sources}
            if after:
                composite["after"] = after
            answer = runner.es.search(
                index=runner.indices.events, size=0, query=query, ignore_unavailable=True,
                allow_no_indices=True, aggs={"g": {"composite": composite, "aggs": {
                    "first": {"min": {"field": "@timestamp"}},
                    "last": {"max": {"field": "@timestamp"}}}}},
            )  # fmt: skip
            if answer.get("_shards", {}).get("failed"):
                raise RuleError(f"backtest search failed: {answer['_shards']}", rule.path)
            agg = answer.get("aggregations", {}).get("g", {})
            for bucket in agg.get("buckets", []):
                start_ms = int(bucket["key"]["w"])
                window = Window(_from_ms(start_ms), _from_ms(start_ms + step_ms))
                first, last = bucket["first"]["value"], bucket["last"]["value"]
                if first < start_ms - lookback_ms or last >= start_ms + step_ms:
                    recheck.add(window.start)  # an event the engine's window leaves out
                    continue
                group = {k: str(bucket["key"][s]) for s, k in (
                    ("p", "locality.province.code"), ("d", "locality.ward.code"))
                    if bucket["key"][s] is not None}  # fmt: skip
                finding = Finding(window, group, int(bucket["doc_count"]), ())
                alert = to_alert(rule, finding, runner.indices, now)
                alerts[alert.id] = _locality(alert)
            after = agg.get("after_key")
            if not after:
                break
            done = (_from_ms(int(after["w"])) - windows[0].start) // rule.interval
            progress(min(done, len(windows)), len(windows))
    return [w for w in windows if w.start in recheck]


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _correlation_candidates(
    runner: Engine, rule: Rule, tuning: Tuning, windows: list[Window],
    progress: Callable[[int, int], None],
) -> list[Window]:  # fmt: skip
    """The windows where a correlation may fire, from date_range searches over chunks of
    windows. A chunk sees events a window's own search does not (ingested later in the chunk),
    so its counts are upper bounds: with a threshold that only a larger count can meet, every
    window that fires is among the chunk's findings, and only those are evaluated exactly."""
    assert rule.condition is not None
    monotonic = rule.condition.op in ("gte", "gt")
    # value_count: a cardinality sketch per group and sub-window; over a chunk of sub-windows
    # and every source address that trips the node's memory breaker (bench/reports/backtest.md).
    if not monotonic or _needs_samples(rule, tuning) or rule.kind is Kind.VALUE_COUNT:
        return windows  # no safe shortcut: every window, as the engine would
    # Bounds the sub-windows (date_range buckets) of one search.
    size = max(1, CHUNK_RANGES * resolution(rule) // rule.interval)
    chunks = [windows[n : n + size] for n in range(0, len(windows), size)]
    plan = [(rule, Window(c[0].start, c[-1].end), tuning) for c in chunks]
    candidates: set[datetime] = set()
    step = runner.chunk
    for offset in range(0, len(plan), step):
        for outcome in runner.evaluate(plan[offset : offset + step]):
            if outcome.error:
                raise RuleError(outcome.error, rule.path, rule.line)
            candidates.update(f.window.start for f in outcome.findings)
        progress(min((offset + step) * size, len(windows)) // 2, len(windows))
    return [w for w in windows if w.start in candidates]


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
    store = _store(es, settings)
    store.save_tuning(rule.id, with_threshold(store.tuning(rule.id), rule, province, count),
                      by=by)  # fmt: skip


def with_threshold(current: Tuning, rule: Rule, province: str, count: int | None) -> Tuning:
    """``current`` with one province's threshold overridden (reset with ``count=None``)."""
    if not rule.kind.is_correlation:
        raise RuleError(f"rule {rule.title!r} has no threshold (not a correlation)", rule.path)
    if count is not None and count < 1:
        raise RuleError("a threshold is a count of at least 1", rule.path)
    from soc.localities import catalogue

    code = catalogue().province(province).code
    kept = [(c, n) for c, n in current.thresholds if c != code]
    if count is not None:
        kept.append((code, count))
    return replace(current, thresholds=tuple(sorted(kept)))


def add_exception(
    *, es: Elasticsearch, settings: Settings, rule: Rule, exception: Exception_
) -> None:
    store = _store(es, settings)
    store.save_tuning(rule.id, with_exception(store.tuning(rule.id), rule, exception),
                      by=exception.author)  # fmt: skip


def with_exception(current: Tuning, rule: Rule, exception: Exception_) -> Tuning:
    """``current`` with one more exception, checked (known field, future expiry, a reason)."""
    from detectors.sigma.pipeline import is_known

    if not is_known(exception.field):
        raise RuleError(f"unknown field {exception.field!r} for an exception", rule.path)
    if exception.expires <= datetime.now(UTC):
        raise RuleError("an exception needs an expiry in the future", rule.path)
    if not exception.reason.strip():
        raise RuleError("an exception needs a reason", rule.path)
    return replace(current, exceptions=(*current.exceptions, exception))


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
        str(p)
        for p in rules_dir(settings).rglob("*.yml")
        if "pipeline" not in p.parts and _walkable(p)
    )
    collection = SigmaCollection.load_ruleset(files, collect_errors=True)
    plain = iter([r for r in collection.rules if isinstance(r, SigmaRule)])
    issues = []
    for issue in validator.validate_rules(plain):
        where = ", ".join(str(r.source) for r in issue.rules if r.source) or "?"
        issues.append(f"{where}: {type(issue).__name__} ({issue.severity.name.lower()}): {issue}")
    return issues


def _walkable(path: Path) -> bool:
    """Whether pySigma's loader can walk the file (``load`` reports the others, file:line)."""
    try:
        check_shape(path.read_text(encoding="utf-8"), str(path))
    except (RuleError, yaml.YAMLError, OSError, UnicodeDecodeError):
        return False
    return True
