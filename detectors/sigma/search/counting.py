"""The scan strategy of correlations: one search per scope reads the events any of them counts,
and the sliding sub-windows are counted in Python instead of one aggregation tree per rule under
every sub-window. The events a correlation counts are few (failures of one kind), while its
aggregations cost the same however few they are. A scope holding more matching events than a scan
reads answers None: the caller then searches it with aggregations (``bodies.compose``).
"""

from __future__ import annotations

import bisect
import functools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from detectors.sigma.models import Kind, Rule
from detectors.sigma.search.models import (
    CLASS_FIELD,
    SAMPLE_FIELDS,
    SAMPLES,
    VALUE_NAMES,
    Answer,
    Bucket,
    Parts,
    Samples,
    Slide,
    bits,
)
from detectors.sigma.search.named import Named, Names, matches
from soc import timeutil


@dataclass(frozen=True, slots=True)
class Counting:
    """How :func:`counted` evaluates one correlation from a :func:`correlation_scan`: its
    events (a tree of named parts), and for a ``temporal`` one, each referenced rule's."""

    rule: Rule
    ranges: tuple[dict[str, str], ...]
    tree: Named
    bases: tuple[tuple[str, Named], ...] = ()
    minimum: int = 1


def correlation_scan(
    batch: Sequence[tuple[Rule, Parts]], limit: int
) -> tuple[dict[str, Any], list[Counting]]:
    """One search for correlations sharing a scope that returns the scope's events matching
    any of them (up to ``limit``), with the parts each matches, the group-by and value fields and
    the time, so the sliding sub-windows are counted in Python (:func:`counted`) instead of one
    aggregation tree per rule under every sub-window. The events a correlation counts are few
    (failures of one kind), while its aggregations cost the same however few they are."""
    names = Names()
    plans: list[Counting] = []
    wanted: dict[str, dict[str, Any]] = {}
    optional: dict[str, dict[str, Any]] = {}
    fields = dict.fromkeys(SAMPLE_FIELDS)
    for n, (rule, part) in enumerate(batch):
        excepted = bool(part.match["bool"]["must_not"])
        tree = (names.part(part.match, f"correlation {n}") if excepted
                else names.tree(rule.parts))  # fmt: skip
        bases: tuple[tuple[str, Named], ...] = ()
        if rule.kind is Kind.TEMPORAL:
            bases = tuple((rid, names.tree(tree)) for rid, tree in rule.base_parts)
            # Also named outside the filter (which may hold them whole, or behind an exception),
            # only to say which referenced rule each event meets.
            optional.update((repr(b), names.query(b)) for _, b in bases)
        # Rules counting the same events (one failure kind grouped by user, by IP) match once.
        wanted.setdefault(repr(tree), names.query(tree))
        fields.update(dict.fromkeys(rule.group_by))
        if rule.value_field:
            fields[rule.value_field] = None
        plans.append(Counting(rule, part.ranges, tree, bases, part.minimum))
    anything = {"bool": {"should": list(wanted.values()), "minimum_should_match": 1}}
    query: dict[str, Any] = {"bool": {"filter": [*batch[0][1].scope, anything]}}
    if optional:
        query["bool"]["should"] = list(optional.values())
    body = {
        "size": limit,
        "track_total_hits": limit + 1,
        "_source": False,
        "docvalue_fields": [{"field": "@timestamp", "format": "epoch_millis"}, *fields],
        "sort": [{"@timestamp": "asc"}],
        "query": query,
    }
    return body, plans


def counted(plans: Sequence[Counting], answer: Mapping[str, Any]) -> list[Answer] | None:
    """The answer of :func:`correlation_scan` as one answer per correlation: per sliding
    sub-window, its groups with their count, newest event, distinct values, referenced rules met
    and earliest events (the samples), as the aggregations give them; None when the scope held
    more matching events than the scan returned (the caller then falls back to aggregations)."""
    hits = answer.get("hits", {}).get("hits", [])
    if answer.get("hits", {}).get("total", {}).get("value", 0) > len(hits):
        return None
    masks: dict[str, int] = {}
    every = (1 << len(hits)) - 1
    for bit, hit in enumerate(hits):
        for name in hit.get("matched_queries", ()):
            masks[name] = masks.get(name, 0) | (1 << bit)
    times = [float((hit.get("fields", {}).get("@timestamp") or [0])[0]) for hit in hits]
    docs = Samples(hits)

    answers = []
    keys: dict[tuple[int, tuple[str, ...]], list[tuple[str, ...]]] = {}
    for plan in plans:
        rule = plan.rule
        events = bits(matches(plan.tree, masks, every))  # in time order, as the hits
        moments = [times[bit] for bit in events]
        grouped = []
        for bit in events:
            if (bit, rule.group_by) not in keys:
                keys[bit, rule.group_by] = _group_keys(hits[bit], rule.group_by)
            grouped.append((bit, keys[bit, rule.group_by]))
        bases = [(rid, matches(tree, masks, every)) for rid, tree in plan.bases]
        slides = []
        for window in plan.ranges:
            low = bisect.bisect_left(moments, _millis(window["from"]))
            high = bisect.bisect_left(moments, _millis(window["to"]))
            groups: dict[tuple[str, ...], list[int]] = {}
            for bit, in_groups in grouped[low:high]:
                for key in in_groups:
                    groups.setdefault(key, []).append(bit)
            leaves = []
            for key, members in groups.items():
                if len(members) < plan.minimum:
                    continue
                names: list[str] = []
                if rule.value_field:
                    values = {_key(v) for b in members for v in _values(hits[b], rule.value_field)}
                    names = sorted(values)
                wards = {_key(v) for b in members for v in _values(hits[b], "locality.ward.code")}
                classes = Counter(_key(v) for b in members for v in _values(hits[b], CLASS_FIELD))
                met = sum(1 for _, mask in bases if any(mask >> b & 1 for b in members))
                leaves.append(Bucket(
                    dict(zip(rule.group_by, key, strict=True)), len(members), times[members[-1]],
                    times[members[0]], tuple(docs[b] for b in members[:SAMPLES]), len(names),
                    tuple(names[:VALUE_NAMES]), tuple(sorted(wards)), dict(classes.most_common()),
                    met,
                ))  # fmt: skip
            slides.append(Slide(window["key"], tuple(leaves)))
        answers.append(Answer(slides=tuple(slides)))
    return answers


@functools.lru_cache(maxsize=8192)
def _millis(stamp: str) -> float:
    return timeutil.parse(stamp).timestamp() * 1000


def _values(hit: Mapping[str, Any], name: str) -> list[Any]:
    return list(hit.get("fields", {}).get(name) or ())


def _key(value: Any) -> str:
    """A field value as a ``terms`` bucket names it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _group_keys(hit: Mapping[str, Any], fields: Sequence[str]) -> list[tuple[str, ...]]:
    """The groups an event falls in: one per combination of its values of the group-by fields
    (an event without a value of one is in none, as with ``terms``)."""
    keys: list[tuple[str, ...]] = [()]
    for name in fields:
        values = sorted({_key(v) for v in _values(hit, name)})
        keys = [(*key, value) for key in keys for value in values]
    return keys
