"""Findings of a rule in a window, from its typed :class:`~.models.Answer` whichever strategy
searched; and the aggregations of a composed search (``bodies.compose``) read into such answers.

A plain rule finds one :class:`~.models.Finding` per place. A correlation finds, per slot of its
interval and group, the sliding sub-window with the largest value that meets its condition (a
per-province threshold where one is set) and whose newest event lies in that slot.
It must not send requests.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from detectors.base import Window, floor, iso
from detectors.sigma.models import Kind, Rule
from detectors.sigma.search.models import (
    NONE,
    Answer,
    Bucket,
    Finding,
    Place,
    Slide,
    Tuning,
    hits_of,
)
from soc import timeutil


def split(rules: Sequence[Rule], answer: Mapping[str, Any]) -> list[Answer]:
    """The aggregations of a composed search as one answer per rule, in order."""
    aggs = answer.get("aggregations", {})
    return [aggregated(rule, aggs.get(f"r{n}", {})) for n, rule in enumerate(rules)]


def aggregated(rule: Rule, aggs: Mapping[str, Any]) -> Answer:
    """One rule's aggregations (``province``/``ward`` terms, or ``slide`` date ranges)."""
    if rule.kind is Kind.QUERY:
        return Answer(places=tuple(_places(aggs)))
    slides = aggs.get("slide", {}).get("buckets", {})
    return Answer(slides=tuple(
        Slide(key, tuple(_bucket(group, leaf) for group, leaf in _leaves(top, rule.group_by, {})))
        for key, top in slides.items()
    ))  # fmt: skip


def findings(rule: Rule, window: Window, tuning: Tuning, answer: Answer) -> list[Finding]:
    if rule.kind is Kind.QUERY:
        return [Finding(window, p.group, p.count, p.samples) for p in answer.places]
    return _correlation_findings(rule, tuning, answer.slides)


def _places(aggs: Mapping[str, Any]) -> Iterator[Place]:
    for province in aggs.get("province", {}).get("buckets", []):
        for ward in province["ward"]["buckets"]:
            group = {"locality.province.code": str(province["key"])}
            if ward["key"] != NONE:
                group["locality.ward.code"] = str(ward["key"])
            if group["locality.province.code"] == NONE:
                del group["locality.province.code"]
            yield Place(group, int(ward["doc_count"]), hits_of(ward["samples"]))


def _bucket(group: dict[str, str], leaf: Mapping[str, Any]) -> Bucket:
    terms = leaf.get("names", {}).get("buckets", ())
    names = tuple(str(b.get("key_as_string", b["key"])) for b in terms)
    kinds = leaf.get("classes", {}).get("buckets", ())
    classes = {str(b["key"]): int(b["doc_count"]) for b in kinds}
    met = [b for b in leaf.get("rules", {}).get("buckets", {}).values() if b["doc_count"] > 0]
    samples = hits_of(leaf["samples"]) if "samples" in leaf else None
    distinct = int(leaf["values"]["value"]) if "values" in leaf else 0
    first = leaf.get("first", {}).get("value")
    return Bucket(group, int(leaf["doc_count"]), leaf["last"].get("value"), first, samples,
                  distinct, names, (), classes, len(met))  # fmt: skip


def _correlation_findings(rule: Rule, tuning: Tuning, slides: Sequence[Slide]) -> list[Finding]:
    assert rule.condition is not None
    assert rule.timespan is not None
    best: dict[tuple[datetime, tuple[tuple[str, str], ...]], Finding] = {}
    for slide in slides:
        end, slot = _slot(slide.key, rule.interval)
        for bucket in slide.buckets:
            group = bucket.group
            value = _value(rule, bucket)
            samples = bucket.samples or ()
            province = group.get("locality.province.code") or _province(samples)
            condition = tuning.threshold_for(province, rule.condition)
            last = bucket.last
            if not condition.holds(value) or last is None or last < slot.start.timestamp() * 1000:
                continue
            ident = (slot.start, tuple(sorted(group.items())))
            if ident not in best or best[ident].count < value:
                sub = (iso(end - rule.timespan), iso(end))
                span = None if bucket.samples is not None else sub
                best[ident] = Finding(slot, group, value, samples, span, sub, bucket.count,
                                      bucket.first, _detail(bucket))  # fmt: skip
    return sorted(best.values(), key=lambda f: (f.window.start, sorted(f.group.items())))


@functools.lru_cache(maxsize=8192)
def _slot(key: str, interval: timedelta) -> tuple[datetime, Window]:
    """The end of a sub-window (its key), and the slot of ``interval`` it closes."""
    end = timeutil.parse(key)
    start = floor(end - timedelta(milliseconds=1), interval)
    return end, Window(start, start + interval)


def _province(samples: Sequence[Mapping[str, Any]]) -> str | None:
    for sample in samples:
        code = sample.get("locality", {}).get("province", {}).get("code")
        if code:
            return str(code)
    return None


def _leaves(
    bucket: Mapping[str, Any], fields: Sequence[str], group: dict[str, str]
) -> Iterator[tuple[dict[str, str], Mapping[str, Any]]]:
    if not fields:
        yield group, bucket
        return
    for child in bucket["g"]["buckets"]:
        key = child.get("key_as_string", child["key"])
        yield from _leaves(child, fields[1:], {**group, fields[0]: str(key)})


def _detail(bucket: Bucket) -> dict[str, Any]:
    """A finding's distinct values, the communes its events come from (scans only) and their
    failure classes."""
    detail: dict[str, Any] = {}
    if bucket.names:
        detail["values"] = list(bucket.names)
    if bucket.wards:
        detail["wards"] = list(bucket.wards)
    if bucket.classes:
        detail["classes"] = dict(bucket.classes)
    return detail


def _value(rule: Rule, bucket: Bucket) -> int:
    if rule.kind is Kind.VALUE_COUNT:
        return bucket.distinct
    if rule.kind is Kind.TEMPORAL:
        return bucket.rules_met
    return bucket.count
