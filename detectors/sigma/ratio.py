"""Volume-aware correlations: a failure count judged against its population and its baseline.

A fixed count ("50 server errors in 5 minutes") never fires where a province carries 20 requests
an hour at night, and fires on a healthy busy hour in a city. A correlation with soc's ``ratio``
extension (:class:`~detectors.sigma.models.Ratio`, ``soc: ratio:`` in the rule file) keeps its
Sigma condition as a *minimum count* every locality can reach, and a finding is kept only when

* ``failures`` out of ``total`` population events of the same place and service, counted from the
  first failure of the finding's sub-window on (hours of healthy traffic before an outage must
  not dilute it), are improbable under the place's baseline failure rate ``p0``: the binomial
  tail ``P(X >= failures | total, p0) <= alpha / rate``, where ``rate`` is the population's
  events an hour in the sub-window. A run of ``k`` failures starts by chance about
  ``rate * p0**k`` times an hour, so ``alpha`` bounds the false alarms per hour of a group,
  busy or quiet: a quiet commune's two failed requests in a row are evidence, a city's are not;
* the observed ratio is at least ``lift * p0`` and at least ``min_ratio`` (a significant but tiny
  rise in a huge population is not an incident).

With ``by_class``, ``p0`` is the rate of the failure classes (``error.type``) the finding holds,
not of every class the rule counts: two refused connections where only timeouts are usual are
evidence at volumes where two failures of any class are not. Each set of classes fires at most
``alpha`` times an hour by chance, and all together never more often than the classes together
fail ``k`` times in a row (the sets' chances add up to the whole's).

The baseline is learnt from the store: per ``baseline_by`` values, failures and population events
over ``baseline`` before the hour the window starts in (causal: never the window itself), with a
``composite`` aggregation, cached per (rule, hour) and refreshed when the hour changes. Each rate
is shrunk towards the rate of all places together (empirical Bayes), so a commune with little
history borrows from the others. This module builds the searches and judges; the engine sends
them (:meth:`Judge.__call__` gets a ``search`` function) and must not know the statistics.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from scipy.stats import binom

from detectors.base import floor, iso, parse_duration
from detectors.sigma.models import Kind, Ratio, Rule
from detectors.sigma.search import Finding
from detectors.sigma.search.models import CLASS_FIELD
from soc.errors import RuleError

Search = Callable[[Sequence[Mapping[str, Any]]], list[Mapping[str, Any]]]
Key = tuple[str, ...]

#: The baseline of a rule is learnt again when the window reaches a new hour.
REFRESH = timedelta(hours=1)
_PAGE = 1000
_BATCH = 50
_KEYS = {"of", "within", "baseline_by", "baseline", "alpha", "lift", "min_ratio", "prior",
         "prior_weight", "floor", "by_class"}  # fmt: skip
_NOT_NUMBERS = {"of", "within", "baseline_by", "baseline", "by_class"}


# ----------------------------------------------------------------------------- loading
def load_ratio(
    raw: Any, kind: Kind, group_by: tuple[str, ...], rules: Mapping[str, Rule], path: str, line: int
) -> Ratio:
    """The ``soc:`` block of a correlation file as a :class:`Ratio`; :class:`RuleError` naming
    the file and line of the block when it is not one."""

    def fail(message: str) -> RuleError:
        return RuleError(f"soc extension: {message} (see docs/detection.md)", path, line)

    if not isinstance(raw, Mapping) or set(raw) != {"ratio"}:
        raise fail("expected `soc: {ratio: {of: <rule>, ...}}`")
    if not isinstance(raw["ratio"], Mapping):
        raise fail("expected `soc: {ratio: {of: <rule>, ...}}`")
    spec = dict(raw["ratio"])
    unknown = sorted(set(spec) - _KEYS)
    if unknown:
        raise fail(f"unknown ratio setting(s) {unknown}; known: {sorted(_KEYS)}")
    if kind not in (Kind.EVENT_COUNT, Kind.VALUE_COUNT):
        raise fail("a ratio applies to event_count and value_count correlations only")
    target = rules.get(str(spec.get("of")))
    if target is None:
        raise fail(f"ratio `of` names unknown rule {spec.get('of')!r}")
    within = tuple(spec.get("within") or group_by)
    baseline_by = tuple(spec.get("baseline_by") or group_by)
    if not set(within) <= set(group_by):
        raise fail(f"ratio `within` {list(within)} must be group-by fields {list(group_by)}")
    if not set(baseline_by) <= set(group_by):
        raise fail(f"ratio `baseline_by` must be group-by fields {list(group_by)}")
    if len([f for f in baseline_by if f not in within]) > 1:
        raise fail("ratio `baseline_by` may add at most one field to `within` (a class)")
    by_class = spec.get("by_class", False)
    if not isinstance(by_class, bool):
        raise fail("ratio `by_class` must be true or false")
    try:
        numbers = {k: float(spec[k]) for k in _KEYS & set(spec) - _NOT_NUMBERS}
        period = parse_duration(str(spec.get("baseline", "7d")))
        return Ratio(of=target.id, of_query=target.query, within=within,
                     baseline_by=baseline_by, baseline=period, by_class=by_class,
                     **numbers)  # fmt: skip
    except (TypeError, ValueError) as exc:
        raise fail(str(exc)) from None


# ----------------------------------------------------------------------------- baseline
@dataclass(frozen=True, slots=True)
class Baseline:
    """Failures and population per place (the ``within`` part of ``baseline_by``), failures
    split by the extra field (the class) when there is one."""

    ratio: Ratio
    as_of: datetime
    #: place -> population events; (place, split value) -> failures
    totals: Mapping[Key, int]
    failures: Mapping[tuple[Key, str], int]
    #: (place, failure class) -> failures (``by_class`` rules only)
    classes: Mapping[tuple[Key, str], int] = field(default_factory=dict)

    def rate(self, place: Key, split: str, seen: Collection[str] = ()) -> float:
        """The shrunk baseline failure rate of ``place`` (and class ``split``); for a
        ``by_class`` rule given the classes ``seen`` in a finding, the sum of those classes'
        rates (a class the place never failed with borrows from all places, then the floor)."""
        r = self.ratio
        if r.by_class and seen:
            rate = sum(self._shrunk(self.classes, place, c) for c in seen)
        else:
            rate = self._shrunk(self.failures, place, split)
        return min(max(rate, r.floor), 0.999)

    def _shrunk(self, failures: Mapping[tuple[Key, str], int], place: Key, split: str) -> float:
        r = self.ratio
        pooled_n = sum(n for p, n in self.totals.items() if _pool(p, place, self._local))
        pooled_f = sum(f for (p, s), f in failures.items()
                       if s == split and _pool(p, place, self._local))  # fmt: skip
        prior = pooled_f / pooled_n if pooled_n else r.prior
        n = self.totals.get(place, 0)
        f = failures.get((place, split), 0)
        return (f + r.prior_weight * prior) / (n + r.prior_weight) if n + r.prior_weight else prior

    @property
    def _local(self) -> tuple[bool, ...]:
        """Which place fields are localities (pooled over), which are not (kept)."""
        return tuple(f.startswith("locality.") for f in _place_fields(self.ratio))


def _place_fields(ratio: Ratio) -> tuple[str, ...]:
    return tuple(f for f in ratio.baseline_by if f in ratio.within)


def _pool(candidate: Key, place: Key, local: tuple[bool, ...]) -> bool:
    """Whether ``candidate`` is pooled with ``place``: same values but for the localities."""
    return all(lo or a == b for a, b, lo in zip(candidate, place, local, strict=True))


def baseline_body(rule: Rule, as_of: datetime, after: Mapping[str, Any] | None) -> dict[str, Any]:
    """One page of the composite aggregation learning ``rule``'s baseline as of ``as_of``."""
    ratio = rule.ratio
    assert ratio is not None
    start = as_of - ratio.baseline
    inner: dict[str, Any] = {}
    if ratio.split:
        inner["split"] = {"terms": {"field": ratio.split[0], "size": 50}}
    if ratio.by_class:
        inner["classes"] = {"terms": {"field": CLASS_FIELD, "size": 50}}
    failing: dict[str, Any] = {"filter": _query(rule.combined_query)}
    if inner:
        failing["aggs"] = inner
    sources = [{f: {"terms": {"field": f}}} for f in _place_fields(ratio)]
    composite: dict[str, Any] = {"size": _PAGE, "sources": sources}
    if after:
        composite["after"] = dict(after)
    range_ = {"range": {"@timestamp": {"gte": iso(start), "lt": iso(as_of)}}}
    query = {"bool": {"filter": [range_, _query(ratio.of_query)]}}
    if not sources:  # a rule-wide baseline: one bucket
        return {"size": 0, "query": query, "aggs": {"failing": failing}}
    return {"size": 0, "query": query,
            "aggs": {"places": {"composite": composite, "aggs": {"failing": failing}}}}  # fmt: skip


def _read_page(
    ratio: Ratio, answer: Mapping[str, Any], totals: dict[Key, int],
    failures: dict[tuple[Key, str], int], classes: dict[tuple[Key, str], int],
) -> Mapping[str, Any] | None:  # fmt: skip
    """Add one page's counts; the next page's ``after`` key, or None at the end."""
    aggs = answer.get("aggregations", {})
    if "places" not in aggs:
        buckets = [{"key": {}, "doc_count": answer["hits"]["total"]["value"], **aggs}]
    else:
        buckets = aggs["places"]["buckets"]
    fields = _place_fields(ratio)
    for bucket in buckets:
        place = tuple(str(bucket["key"][f]) for f in fields)
        totals[place] = int(bucket["doc_count"])
        failing = bucket["failing"]
        if ratio.split:
            for split in failing["split"]["buckets"]:
                failures[place, str(split["key"])] = int(split["doc_count"])
        else:
            failures[place, ""] = int(failing["doc_count"])
        for kind in failing.get("classes", {}).get("buckets", ()):
            classes[place, str(kind["key"])] = int(kind["doc_count"])
    after = aggs.get("places", {}).get("after_key")
    return after if buckets and after and len(buckets) == _PAGE else None


# ----------------------------------------------------------------------------- judging
def population_body(rule: Rule, batch: Sequence[tuple[Finding, datetime]]) -> dict[str, Any]:
    """One search counting, per finding, the population events of its place in its sub-window
    (only those ingested before its window's end: what a live run could see)."""
    ratio = rule.ratio
    assert ratio is not None
    aggs = {}
    for n, (finding, end) in enumerate(batch):
        assert finding.slide is not None
        where: list[dict[str, Any]] = [{"range": {"event.ingested": {"lt": iso(end)}}}]
        where += [{"term": {f: finding.group[f]}} for f in ratio.within if f in finding.group]
        since = {"range": {"@timestamp": {"gte": _since(finding), "lt": finding.slide[1]}}}
        aggs[f"f{n}"] = {
            "filter": {"bool": {"filter": where}},
            "aggs": {"since": {"filter": since}},
        }
    starts = [f.slide[0] for f, _ in batch if f.slide]
    ends = [f.slide[1] for f, _ in batch if f.slide]
    scope = [{"range": {"@timestamp": {"gte": min(starts), "lt": max(ends)}}},
             _query(ratio.of_query)]  # fmt: skip
    return {"size": 0, "query": {"bool": {"filter": scope}}, "aggs": aggs}


def _since(finding: Finding) -> str:
    """Where the population is counted from: the first failure of the finding's sub-window (a
    long sub-window of healthy traffic before an outage must not dilute it)."""
    assert finding.slide is not None
    if finding.first is None:
        return finding.slide[0]
    return iso(datetime.fromtimestamp(finding.first / 1000, UTC))


def ratio_test(
    ratio: Ratio, failures: int, total: int, p0: float, per_hour: float
) -> dict[str, Any]:
    """The binomial test of ``failures`` out of ``total`` against ``p0`` for a population of
    ``per_hour`` events an hour, as the alert shows it."""
    total = max(total, failures)
    observed = failures / total if total else 0.0
    p_value = float(binom.sf(failures - 1, total, p0)) if total else 1.0
    threshold = ratio.alpha / max(1.0, per_hour)
    fired = (p_value <= threshold and observed >= ratio.lift * p0
             and observed >= ratio.min_ratio)  # fmt: skip
    return {"failures": failures, "total": total, "ratio": round(observed, 4),
            "baseline_ratio": round(p0, 5), "p_value": float(f"{p_value:.3g}"),
            "threshold": float(f"{threshold:.3g}"), "events_per_hour": round(per_hour, 1),
            "lift": round(observed / p0, 1) if p0 else math.inf, "fired": fired}  # fmt: skip


class Judge:
    """Keeps the findings of ratio rules that pass :func:`test`; learns and caches baselines."""

    def __init__(self, search: Search, cache_size: int = 64) -> None:
        self.search = search
        self._cache: OrderedDict[tuple[str, datetime], Baseline] = OrderedDict()
        self._size = cache_size
        #: Searches sent for baselines (the benchmark and tests read it).
        self.baseline_searches = 0

    def __call__(
        self, items: Sequence[tuple[Rule, datetime, datetime, Sequence[Finding]]]
    ) -> list[tuple[tuple[Finding, ...], str | None]]:
        """For each (rule, window start, window end, findings): the findings kept (the others
        unchanged when the rule has no ratio) and an error when a search failed."""
        out: list[tuple[tuple[Finding, ...], str | None]] = [(tuple(f), None) for *_, f in items]
        todo = [(n, it) for n, it in enumerate(items) if it[0].ratio is not None and it[3]]
        if not todo:
            return out
        baselines, failed = self._baselines([(it[0], _as_of(it[1])) for _, it in todo])
        # A population search counts one rule's population (its ``of`` query and ``within``
        # fields): a batch holds the findings of one rule only.
        by_rule: dict[str, list[tuple[int, int, Finding, datetime]]] = {}
        for n, it in todo:
            for k, f in enumerate(it[3]):
                by_rule.setdefault(it[0].id, []).append((n, k, f, it[2]))
        batches = [group[i : i + _BATCH] for group in by_rule.values()
                   for i in range(0, len(group), _BATCH)]  # fmt: skip
        bodies = [population_body(items[b[0][0]][0], [(f, end) for _, _, f, end in b])
                  for b in batches]  # fmt: skip
        totals: dict[tuple[int, int], tuple[int, int]] = {}
        errors: dict[int, str] = {}
        for batch, answer in zip(batches, self.search(bodies) if bodies else [], strict=True):
            for i, (n, k, _, _) in enumerate(batch):
                if _error(answer):
                    errors[n] = f"population search failed: {_error(answer)}"
                else:
                    bucket = answer["aggregations"][f"f{i}"]
                    totals[n, k] = (int(bucket["since"]["doc_count"]), int(bucket["doc_count"]))
        for n, (rule, start, _, found) in todo:
            key = (rule.id, _as_of(start))
            error = errors.get(n) or failed.get(key)
            if error:
                out[n] = ((), f"{rule.where}: {error}")
                continue
            kept = []
            for k, finding in enumerate(found):
                judged = _judged(rule, baselines[key], finding, totals[n, k])
                if judged is not None:
                    kept.append(judged)
            out[n] = (tuple(kept), None)
        return out

    def _baselines(
        self, wanted: Sequence[tuple[Rule, datetime]]
    ) -> tuple[dict[tuple[str, datetime], Baseline], dict[tuple[str, datetime], str]]:
        rules = {(r.id, at): r for r, at in wanted}
        found = {k: self._cache[k] for k in rules if k in self._cache}
        Counts = dict[tuple[Key, str], int]
        state: dict[tuple[str, datetime], tuple[dict[Key, int], Counts, Counts]] = {
            k: ({}, {}, {}) for k in rules if k not in found
        }
        after: dict[tuple[str, datetime], Mapping[str, Any] | None] = dict.fromkeys(state)
        failed: dict[tuple[str, datetime], str] = {}
        pending = list(state)
        while pending:
            bodies = [baseline_body(rules[k], k[1], after[k]) for k in pending]
            self.baseline_searches += len(bodies)
            following = []
            for key, answer in zip(pending, self.search(bodies), strict=True):
                if _error(answer):
                    failed[key] = f"baseline search failed: {_error(answer)}"
                    continue
                ratio = rules[key].ratio
                assert ratio is not None
                after[key] = _read_page(ratio, answer, *state[key])
                if after[key] is not None:
                    following.append(key)
            pending = following
        for key, (totals, failures, classes) in state.items():
            if key in failed:
                continue
            ratio = rules[key].ratio
            assert ratio is not None
            found[key] = Baseline(ratio, key[1], totals, failures, classes)
            self._cache[key] = found[key]
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return found, failed


def _judged(
    rule: Rule, baseline: Baseline, finding: Finding, counts: tuple[int, int]
) -> Finding | None:
    """``finding`` with its test, if the test confirms it; ``counts``: the population since its
    first failure and in its whole sub-window."""
    ratio = rule.ratio
    assert ratio is not None
    place = tuple(finding.group.get(f, "") for f in _place_fields(ratio))
    split = finding.group.get(ratio.split[0], "") if ratio.split else ""
    failures = finding.events or finding.count
    classes = (finding.detail.get("classes") or {}) if ratio.by_class else {}
    # Failures without a class are judged with all classes' rate, as without ``by_class``.
    seen = sorted(classes) if sum(classes.values()) >= failures else []
    p0 = baseline.rate(place, split, seen)
    assert rule.timespan is not None
    per_hour = counts[1] / (rule.timespan.total_seconds() / 3600)
    result = ratio_test(ratio, failures, counts[0], p0, per_hour)
    if not result.pop("fired"):
        return None
    if seen:
        result["baseline_classes"] = seen
    result["baseline_since"] = iso(baseline.as_of - ratio.baseline)
    result["baseline_until"] = iso(baseline.as_of)
    return replace(finding, detail={**finding.detail, "ratio": result})


def _as_of(start: datetime) -> datetime:
    return floor(start, REFRESH)


def _query(query: str) -> dict[str, Any]:
    return {"query_string": {"query": query, "analyze_wildcard": True}}


def _error(answer: Mapping[str, Any]) -> str | None:
    if "error" in answer:
        error = answer["error"]
        causes = error.get("root_cause") if isinstance(error, Mapping) else None
        if causes:
            return str(causes[0].get("reason"))
        return str(error.get("reason", error) if isinstance(error, Mapping) else error)
    if answer.get("_shards", {}).get("failed"):
        return "shard failure"
    return None
