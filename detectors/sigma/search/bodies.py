"""Elasticsearch request bodies for one rule over one window, alone or composed with others.

Plain rules select events *ingested* in the window (``event.ingested``), so an event that arrives
late is still seen exactly once, by the window in which it arrived. Correlations count events by
their ``@timestamp`` in sliding sub-windows (``date_range``, overlapping ranges) so a burst that
straddles a window boundary is still seen whole. Only features of the bare Elasticsearch server are
used: ``query_string``, ``terms``, ``date_range``, ``filters``, ``cardinality``, ``top_hits``.
This module builds bodies (and reads the samples it asked for); it must not send requests.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from detectors.base import Window, floor, iso
from detectors.sigma.models import Kind, Rule
from detectors.sigma.search.models import (
    CLASS_FIELD,
    GROUP_SIZE,
    NONE,
    SAMPLE_FIELDS,
    SAMPLES,
    VALUE_NAMES,
    Finding,
    Options,
    Parts,
    Tuning,
    hits_of,
)


def parts(rule: Rule, window: Window, tuning: Tuning, options: Options) -> Parts:
    if rule.kind is Kind.QUERY:
        return _plain_parts(rule, window, tuning, options)
    return _correlation_parts(rule, window, tuning, options)


def body(rule: Rule, window: Window, tuning: Tuning, options: Options) -> dict[str, Any]:
    """The search of one rule over one window on its own."""
    return compose([parts(rule, window, tuning, options)])


def compose(batch: Sequence[Parts]) -> dict[str, Any]:
    """One search for rules sharing a scope: each rule's aggs under a ``filter`` on its match.

    The answer holds one ``r<n>`` bucket per rule; ``answers.split`` gives each rule its own answer.
    """
    scope = list(batch[0].scope)
    per_rule = {f"r{n}": {"filter": p.match, "aggs": p.aggs} for n, p in enumerate(batch)}
    if len(batch) == 1:
        scope.append(batch[0].match)
    # With several rules the top query is the window alone: repeating every rule's match there
    # would evaluate each (wildcard) query twice; the window holds few events anyway.
    query = {"bool": {"filter": scope}}
    if not batch[0].ranges:
        return {"size": 0, "query": query, "aggs": per_rule}
    # Each rule's filter above its sliding sub-windows, not below: an event lies in several
    # overlapping sub-windows, and under them every rule's filter would test it once per
    # sub-window instead of once.
    ranges = list(batch[0].ranges)
    per_rule = {
        f"r{n}": {"filter": p.match, "aggs": {"slide": {
            "date_range": {"field": "@timestamp", "keyed": True, "ranges": ranges},
            "aggs": p.aggs,
        }}}
        for n, p in enumerate(batch)
    }  # fmt: skip
    return {"size": 0, "query": query, "aggs": per_rule}


def _match(query: str, tuning: Tuning, at: datetime) -> dict[str, Any]:
    must_not = [{"term": {e.field: e.value}} for e in tuning.active_exceptions(at)]
    qs = {"query_string": {"query": query, "analyze_wildcard": True}}
    return {"bool": {"filter": [qs], "must_not": must_not}}


def _samples() -> dict[str, Any]:
    return {"top_hits": {"size": SAMPLES, "_source": False, "docvalue_fields": SAMPLE_FIELDS,
                         "sort": [{"@timestamp": "asc"}]}}  # fmt: skip


def _plain_parts(rule: Rule, window: Window, tuning: Tuning, options: Options) -> Parts:
    key, scope, aggs = _plain_scope(window, options.lookback)
    match = _match(rule.query, tuning, window.end)
    shared = not match["bool"]["must_not"]
    return Parts(key, scope, match, aggs, query=rule.query, tree=rule.parts if shared else None)


@functools.lru_cache(maxsize=1024)
def _plain_scope(
    window: Window, lookback: timedelta
) -> tuple[tuple[str, ...], tuple[dict[str, Any], ...], dict[str, Any]]:
    """The key, scope and aggregations of every plain rule over ``window``: built once (and
    never changed)."""
    start, end = window.iso()
    scope = (
        {"range": {"event.ingested": {"gte": start, "lt": end}}},
        # Bounds the daily indices searched; events later than this are out of scope by design.
        {"range": {"@timestamp": {"gte": iso(window.start - lookback), "lt": end}}},
    )
    aggs = {"province": {
        "terms": {"field": "locality.province.code", "size": GROUP_SIZE, "missing": NONE},
        "aggs": {"ward": {
            "terms": {"field": "locality.ward.code", "size": GROUP_SIZE, "missing": NONE},
            "aggs": {"samples": _samples()},
        }},
    }}  # fmt: skip
    return ("plain", start, end), scope, aggs


def resolution(rule: Rule) -> timedelta:
    """Step between sliding sub-windows: a burst within ``timespan - step`` is seen whole."""
    assert rule.timespan is not None
    return resolution_of(rule.interval, rule.timespan)


def resolution_of(interval: timedelta, timespan: timedelta) -> timedelta:
    step = min(interval, timespan / 10)
    return max(timedelta(seconds=max(1, int(step.total_seconds()))), timedelta(seconds=1))


@functools.lru_cache(maxsize=4096)
def _sliding(
    window: Window, interval: timedelta, timespan: timedelta, lookback: timedelta
) -> tuple[tuple[dict[str, Any], ...], tuple[dict[str, str], ...], tuple[str, ...]]:
    """The scope, sliding sub-windows and search key of correlations over ``window``: the same
    for every rule of one interval and timespan, so built once (and never changed)."""
    step = resolution_of(interval, timespan)
    first = floor(window.start - lookback, interval)
    ends, at = [], first + step
    while at <= window.end:
        ends.append(at)
        at += step
    if not ends or ends[-1] < window.end:
        # The sub-window ending at the window's own end: an open window evaluated early
        # (``Engine(early=True)``) ends at "now", between two steps, and must see the newest events.
        ends.append(window.end)
    scope = (
        {"range": {"@timestamp": {"gte": iso(ends[0] - timespan), "lt": iso(ends[-1])}}},
        # What a live run at the window's end could have seen: a catch-up run gives the same answer.
        {"range": {"event.ingested": {"lt": iso(window.end)}}},
    )
    ranges = tuple({"key": iso(p), "from": iso(p - timespan), "to": iso(p)} for p in ends)
    key = ("correlation", iso(window.end), *(r["key"] + r["from"] for r in ranges))
    return scope, ranges, key


def _correlation_parts(rule: Rule, window: Window, tuning: Tuning, options: Options) -> Parts:
    assert rule.timespan is not None
    scope, ranges, key = _sliding(window, rule.interval, rule.timespan,
                                  options.correlation_lookback)  # fmt: skip
    # The newest event of a sub-window tells in which slot the condition became true, so a burst
    # alerts in the slots where it happens, not for a whole timespan after it ended.
    inner: dict[str, Any] = {"last": {"max": {"field": "@timestamp"}}}
    if rule.ratio is not None:  # where its ratio test starts (detectors/sigma/ratio.py)
        inner["first"] = {"min": {"field": "@timestamp"}}
        inner["classes"] = {"terms": {"field": CLASS_FIELD, "size": 10}}
    if needs_samples(rule, tuning):
        inner["samples"] = _samples()
    if rule.kind is Kind.VALUE_COUNT:
        inner["values"] = {"cardinality": {"field": rule.value_field}}
        inner["names"] = {"terms": {"field": rule.value_field, "size": VALUE_NAMES}}
    elif rule.kind is Kind.TEMPORAL:
        inner["rules"] = {"filters": {"filters": {
            rid: {"query_string": {"query": q, "analyze_wildcard": True}} for rid, q in rule.base
        }}}  # fmt: skip
    minimum = _min_docs(rule, tuning)
    aggs = inner
    for name in reversed(rule.group_by):
        # "map": the few matching events' values are hashed, instead of walking the global
        # ordinals of a field with hundreds of thousands of values (user.name, source.ip).
        aggs = {"g": {"terms": {"field": name, "size": GROUP_SIZE, "min_doc_count": minimum,
                                "execution_hint": "map"}, "aggs": aggs}}  # fmt: skip
    match = _match(rule.combined_query, tuning, window.end)
    return Parts(key, scope, match, aggs, ranges, minimum=minimum)


def needs_samples(rule: Rule, tuning: Tuning) -> bool:
    """Whether a correlation reads samples in its main search: only when a per-province
    threshold needs the province of ungrouped events (from the samples). Otherwise samples are
    read afterwards for the findings alone: ``top_hits`` for every bucket of every sub-window
    was most of the cost of a correlation (bench/reports/detect-cycle.md)."""
    return bool(tuning.thresholds) and "locality.province.code" not in rule.group_by


def sample_body(batch: Sequence[tuple[Parts, Finding]]) -> dict[str, Any]:
    """One search reading the samples of correlation findings sharing a scope: per finding,
    the earliest events of its group in the sub-window that gave its count."""
    aggs = {}
    for n, (part, finding) in enumerate(batch):
        assert finding.span is not None
        start, end = finding.span
        where = [{"range": {"@timestamp": {"gte": start, "lt": end}}}, part.match]
        where += [{"term": {name: value}} for name, value in finding.group.items()]
        aggs[f"f{n}"] = {"filter": {"bool": {"filter": where}}, "aggs": {"samples": _samples()}}
    return {"size": 0, "query": {"bool": {"filter": list(batch[0][0].scope)}}, "aggs": aggs}


def with_samples(finding: Finding, answer: Mapping[str, Any], n: int) -> Finding:
    """``finding`` with the samples :func:`sample_body` read for it (the ``n``-th of its search)."""
    samples = hits_of(answer.get("aggregations", {})[f"f{n}"]["samples"])
    return replace(finding, samples=samples, span=None)


def _min_docs(rule: Rule, tuning: Tuning) -> int:
    assert rule.condition is not None
    if rule.kind is not Kind.EVENT_COUNT:
        return 1
    counts = [rule.condition.min_count] + [
        rule.condition.with_count(c).min_count for _, c in tuning.thresholds
    ]
    return min(counts)
