"""The scan strategy of plain rules: one search per window reads the events matching any part of
any rule sharing it, and each rule's places (province, ward) are counted in Python.

The window is read once, and a part shared by many rules (``event.category:web``, ``*sqlmap*``)
is parsed and matched once, not once per rule. A window holding more matching events than a scan
reads answers None: the caller then searches it with per-rule aggregations (``bodies.compose``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from detectors.sigma.condition import Local
from detectors.sigma.search.models import (
    GROUP_SIZE,
    NONE,
    SAMPLE_FIELDS,
    SAMPLES,
    Answer,
    Parts,
    Place,
    Samples,
    bits,
)
from detectors.sigma.search.named import Named, Names, local_masks, matches


@dataclass(frozen=True, slots=True)
class ScanPlan:
    """What :func:`scanned` needs of a :func:`scan`: each rule's tree of named parts and the
    parts matched in Python."""

    trees: list[Named]
    local: Mapping[str, Local]


def scan(batch: Sequence[Parts], limit: int) -> tuple[dict[str, Any], ScanPlan]:
    """One search for plain rules sharing a window that returns the window's events matching
    any part of any rule (up to ``limit``), each naming the parts it matches
    (``matched_queries``), instead of one aggregation tree per rule: the window is read once,
    and a part shared by many rules (``event.category:web``, ``*sqlmap*``) is parsed and
    matched once, not once per rule. Leading-wildcard parts are matched on the hits' doc values
    in Python (:class:`Local`). Returns the body, and each rule's query as a tree of named
    parts for :func:`scanned` to evaluate."""
    names = Names(local=True)
    trees: list[Named] = []
    same: dict[str, Named] = {}  # rules with the same query share one tree (and its result)
    for n, part in enumerate(batch):
        if part.tree is not None:
            if part.query not in same:
                same[part.query] = names.tree(part.tree)
            trees.append(same[part.query])
        else:  # exceptions apply: the rule's whole filter is one part of its own
            trees.append(names.part(part.match, f"rule {n}"))
    scope = list(batch[0].scope)
    if not any(names.needs_all(tree) for tree in trees):
        scope.append({"bool": {"should": list(names.clauses.values()), "minimum_should_match": 1}})
    query: dict[str, Any] = {"bool": {"filter": scope}}
    if len(scope) == len(batch[0].scope) and names.clauses:
        query["bool"]["should"] = list(names.clauses.values())  # named, to be reported
    fields = dict.fromkeys([*SAMPLE_FIELDS, *(local.field for local in names.local.values())])
    body = {
        "size": limit,
        "track_total_hits": limit + 1,
        "_source": False,
        "docvalue_fields": list(fields),
        # The order of top_hits in the aggregations: the samples are the earliest events.
        "sort": [{"@timestamp": "asc"}],
        "query": query,
    }
    return body, ScanPlan(trees, names.local)


def scanned(plan: ScanPlan, answer: Mapping[str, Any]) -> list[Answer] | None:
    """The answer of :func:`scan` as one answer per rule: its events by province and ward (the
    groups and order of the aggregations' ``terms``), or None when the window held more matching
    events than the scan returned (the caller then falls back to ``bodies.compose``)."""
    hits = answer.get("hits", {}).get("hits", [])
    if answer.get("hits", {}).get("total", {}).get("value", 0) > len(hits):
        return None
    masks = local_masks(plan.local, hits)
    every = (1 << len(hits)) - 1
    places: dict[tuple[str, str], int] = {}  # the events (a bit each) of each province and ward
    where = []
    for bit, hit in enumerate(hits):
        for name in hit.get("matched_queries", ()):
            masks[name] = masks.get(name, 0) | (1 << bit)
        fields = hit.get("fields", {})
        province = str((fields.get("locality.province.code") or [NONE])[0])
        place = (province, str((fields.get("locality.ward.code") or [NONE])[0]))
        places[place] = places.get(place, 0) | (1 << bit)
        where.append(place)
    docs = Samples(hits)  # each event converted once if at all, shared by the rules
    answers = []
    done: dict[int, Answer] = {}
    for node in plan.trees:
        if id(node) in done:
            answers.append(done[id(node)])
            continue
        mask = matches(node, masks, every)
        found: dict[str, dict[str, int]] = {}
        if mask.bit_count() < len(places):  # few events: walk them
            for bit in bits(mask):
                province, ward = where[bit]
                wards = found.setdefault(province, {})
                wards[ward] = wards.get(ward, 0) | (1 << bit)
        else:  # many events in few places: one AND per place
            for (province, ward), events in places.items():
                if mask & events:
                    found.setdefault(province, {})[ward] = mask & events
        done[id(node)] = Answer(places=tuple(_place(*where, docs) for where in _ordered(found)))
        answers.append(done[id(node)])
    return answers


def _ordered(found: Mapping[str, Mapping[str, int]]) -> list[tuple[str, str, int, int]]:
    """(province, ward, count, events) in the order and within the caps of the aggregations'
    ``terms`` (count descending, then key)."""
    provinces = []
    for province, wards in found.items():
        counted = sorted((-events.bit_count(), ward, events) for ward, events in wards.items())
        provinces.append((sum(c for c, _, _ in counted), province, counted[:GROUP_SIZE]))
    provinces.sort(key=lambda item: item[:2])
    return [(province, ward, -count, events) for _, province, wards in provinces[:GROUP_SIZE]
            for count, ward, events in wards]  # fmt: skip


def _place(province: str, ward: str, count: int, events: int, docs: Samples) -> Place:
    group = {} if province == NONE else {"locality.province.code": province}
    if ward != NONE:
        group["locality.ward.code"] = ward
    return Place(group, count, tuple(docs[b] for b in bits(events, SAMPLES)))
