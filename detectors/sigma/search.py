"""Elasticsearch request bodies for one rule over one window, and the findings in the answers.

Plain rules select events *ingested* in the window (``event.ingested``), so an event that arrives
late is still seen exactly once, by the window in which it arrived. Correlations count events by
their ``@timestamp`` in sliding sub-windows (``date_range``, overlapping ranges) so a burst that
straddles a window boundary is still seen whole. Only features of the bare Elasticsearch server are
used: ``query_string``, ``terms``, ``date_range``, ``filters``, ``cardinality``, ``top_hits``.
This module builds and reads bodies; it must not send requests.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from detectors.base import Window, floor, iso
from detectors.sigma.condition import And, Leaf, Local, Node, Not
from detectors.sigma.models import Condition, Kind, Rule

NONE = "__none__"
SAMPLES = 5
GROUP_SIZE = 1000
#: Matching events of one window read by a scan (:func:`scan`); above, per-rule aggregations.
SCAN_LIMIT = 5000
#: Read from doc values, not ``_source``: loading stored ``_source`` for the samples of hundreds
#: of rules was the largest cost of a cycle (bench/reports/detect-cycle.md).
_SAMPLE_FIELDS = ["locality.province.code", "locality.ward.code", "service.name", "source.ip",
                  "user.name", "error.type", "host.name", "host.ip"]  # fmt: skip
#: Distinct values of a ``value_count`` correlation named on its alert (accounts, IPs).
VALUE_NAMES = 20
#: The failure class of an event (soc/events/failures.py): a correlation counts its findings'.
CLASS_FIELD = "error.type"


@dataclass(frozen=True, slots=True)
class Exception_:
    """Suppress a rule's matches where ``field`` equals ``value`` until ``expires``."""

    field: str
    value: str
    reason: str
    author: str
    expires: datetime


@dataclass(frozen=True, slots=True)
class Tuning:
    """Administrator's settings for one rule (``soc rules enable/disable/threshold/except``)."""

    enabled: bool = True
    thresholds: tuple[tuple[str, int], ...] = ()
    exceptions: tuple[Exception_, ...] = ()

    def threshold_for(self, province: str | None, default: Condition) -> Condition:
        for code, count in self.thresholds:
            if code == province:
                return default.with_count(count)
        return default

    def active_exceptions(self, at: datetime) -> list[Exception_]:
        return [e for e in self.exceptions if e.expires > at]


@dataclass(frozen=True, slots=True)
class Finding:
    """One alertable result: a group of events of a rule in a window."""

    window: Window
    group: Mapping[str, str]
    count: int
    samples: tuple[Mapping[str, Any], ...]
    #: A correlation finding whose samples are still to be read (:func:`sample_body`): the
    #: ``@timestamp`` range of the sub-window that gave its count.
    span: tuple[str, str] | None = None
    #: A correlation finding's sub-window (``@timestamp`` range), samples read or not.
    slide: tuple[str, str] | None = None
    #: Events counted in that sub-window (``count`` is the distinct values of a value_count).
    events: int = 0
    #: The time of the first of them (epoch milliseconds), where the ratio test starts.
    first: float | None = None
    #: What the alert explains beyond the count: a value_count's distinct values, the communes
    #: met, a ratio rule's test (detectors/sigma/ratio.py).
    detail: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Options:
    """How far back the searches reach (settings ``SOC_DETECT_*``)."""

    lookback: timedelta = timedelta(days=1)
    correlation_lookback: timedelta = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class Parts:
    """A rule's search split in three: the time scope (shared by rules over the same window and
    sliding ranges, so they can share one search: ``batch``), the rule's own filter, its aggs."""

    key: tuple[Any, ...]
    scope: tuple[dict[str, Any], ...]
    match: dict[str, Any]
    aggs: dict[str, Any]
    ranges: tuple[dict[str, str], ...] = ()
    #: A plain rule's Lucene query.
    query: str = ""
    #: Its condition tree when no exception applies: :func:`scan` may then share its parts.
    tree: Node | None = None
    #: A correlation group with fewer events cannot fire (``min_doc_count`` of its terms).
    minimum: int = 1


def parts(rule: Rule, window: Window, tuning: Tuning, options: Options) -> Parts:
    if rule.kind is Kind.QUERY:
        return _plain_parts(rule, window, tuning, options)
    return _correlation_parts(rule, window, tuning, options)


def body(rule: Rule, window: Window, tuning: Tuning, options: Options) -> dict[str, Any]:
    """The search of one rule over one window on its own."""
    return compose([parts(rule, window, tuning, options)])


def compose(batch: Sequence[Parts]) -> dict[str, Any]:
    """One search for rules sharing a scope: each rule's aggs under a ``filter`` on its match.

    The answer holds one ``r<n>`` bucket per rule; :func:`split` gives each rule its own answer.
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


class _Names:
    """Named query parts of one shared search: each distinct part is named (and so parsed and
    matched) once, and a hit's ``matched_queries`` tells which parts it matches. With
    ``local``, leading-wildcard parts (Sigma's ``contains``/``endswith``) on lowercase keywords
    are instead matched in Python against the hits' doc values (:class:`Local`)."""

    def __init__(self, *, local: bool = False) -> None:
        self.names: dict[str, str] = {}
        self.clauses: dict[str, dict[str, Any]] = {}
        self.local: dict[str, Local] = {}
        self._local = local

    def part(self, clause: dict[str, Any], key: str) -> str:
        if key not in self.names:
            name = self.names[key] = f"q{len(self.names)}"
            self.clauses[name] = {"bool": {"filter": [clause], "_name": name}}
        return self.names[key]

    def tree(self, node: Node) -> Named:
        """``node`` (:mod:`detectors.sigma.condition`) with each leaf replaced by its name."""
        if isinstance(node, Leaf):
            if not (self._local and node.local):
                query = {"query_string": {"query": node.query, "analyze_wildcard": True}}
                return self.part(query, node.query)
            named: list[Named] = []
            for one in node.local:
                key = f"{one.field}:{one.contains}:{one.text}"
                if key not in self.names:
                    self.names[key] = f"l{len(self.names)}"
                    self.local[self.names[key]] = one
                named.append(self.names[key])
            return named[0] if len(named) == 1 else ("OR", named)
        if isinstance(node, Not):
            return ("NOT", [self.tree(node.part)])
        return ("AND" if isinstance(node, And) else "OR", [self.tree(p) for p in node.parts])

    def query(self, node: Named) -> dict[str, Any]:
        """The query of a named tree, with its parts named."""
        if isinstance(node, str):
            return self.clauses[node]
        children = [self.query(child) for child in node[1]]
        if node[0] == "AND":
            return {"bool": {"filter": children}}
        if node[0] == "NOT":
            return {"bool": {"must_not": children}}
        return {"bool": {"should": children, "minimum_should_match": 1}}

    def needs_all(self, node: Named) -> bool:
        """Whether ``node`` can match an event that matches none of the searched parts (only
        local ones, or a negation): then the scan must read every event of its scope."""
        if isinstance(node, str):
            return node in self.local
        if node[0] == "NOT":
            return True
        met = [self.needs_all(child) for child in node[1]]
        return all(met) if node[0] == "AND" else any(met)


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
    names = _Names(local=True)
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
    fields = dict.fromkeys([*_SAMPLE_FIELDS, *(local.field for local in names.local.values())])
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


def _local_masks(local: Mapping[str, Local], hits: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """The hits (a bit each) matching each local part: every value of a field joined in one
    text, searched with ``str.find`` per part (C speed), each match mapped back to its hit."""
    masks: dict[str, int] = {}
    by_field: dict[str, list[str]] = {}
    for name, part in local.items():
        by_field.setdefault(part.field, []).append(name)
    for field, names in by_field.items():
        starts: list[int] = []
        owners: list[int] = []
        values: list[str] = []
        at = 0
        for bit, hit in enumerate(hits):
            for value in hit.get("fields", {}).get(field) or ():
                text = str(value)
                starts.append(at)
                owners.append(bit)
                values.append(text)
                at += len(text) + 1
        joined = "\0".join(values) + "\0"
        for name in names:
            part, mask = local[name], 0
            needle = part.text if part.contains else part.text + "\0"
            found = joined.find(needle)
            while found >= 0:
                n = bisect.bisect_right(starts, found) - 1
                mask |= 1 << owners[n]
                # the next value: a hit counts once per part
                found = joined.find(needle, starts[n + 1] if n + 1 < len(starts) else len(joined))
            masks[name] = mask
    return masks


#: A tree of named parts: a part's name, or ("AND"|"OR"|"NOT", children).
Named = str | tuple[str, list[Any]]


def _matches(node: Named, masks: Mapping[str, int], every: int) -> int:
    """The events (a bit per hit, ``every`` hit) matching ``node``, from those of each part."""
    if isinstance(node, str):
        return masks.get(node, 0)
    values = [_matches(child, masks, every) for child in node[1]]
    if node[0] == "NOT":
        return every & ~values[0]
    result = values[0]
    for value in values[1:]:
        result = result & value if node[0] == "AND" else result | value
    return result


def scanned(plan: ScanPlan, answer: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The answer of :func:`scan` as one answer per rule: its events by province and ward (the
    groups and order of the aggregations' ``terms``), or None when the window held more matching
    events than the scan returned (the caller then falls back to :func:`compose`)."""
    hits = answer.get("hits", {}).get("hits", [])
    if answer.get("hits", {}).get("total", {}).get("value", 0) > len(hits):
        return None
    masks = _local_masks(plan.local, hits)
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
    docs = _Samples(hits)  # each event converted once if at all, shared by the rules
    answers = []
    done: dict[int, dict[str, Any]] = {}
    for node in plan.trees:
        if id(node) in done:
            answers.append(done[id(node)])
            continue
        mask = _matches(node, masks, every)
        found: dict[str, dict[str, int]] = {}
        if mask.bit_count() < len(places):  # few events: walk them
            for bit in _bits(mask):
                province, ward = where[bit]
                wards = found.setdefault(province, {})
                wards[ward] = wards.get(ward, 0) | (1 << bit)
        else:  # many events in few places: one AND per place
            for (province, ward), events in places.items():
                if mask & events:
                    found.setdefault(province, {})[ward] = mask & events
        done[id(node)] = {"places": _ordered(found), "docs": docs}
        answers.append(done[id(node)])
    return answers


class _Samples:
    """Hits of a scan as sample events (:func:`_hits`, sample fields only), converted on first
    use: most matching events of a busy window are never a sample."""

    def __init__(self, hits: Sequence[Mapping[str, Any]]) -> None:
        self.hits = hits
        self.docs: dict[int, Mapping[str, Any]] = {}

    def __getitem__(self, bit: int) -> Mapping[str, Any]:
        if bit not in self.docs:
            hit = self.hits[bit]
            fields = hit.get("fields", {})
            kept = {name: fields[name] for name in _SAMPLE_FIELDS if name in fields}
            self.docs[bit] = _doc({"_id": hit["_id"], "_index": hit["_index"], "fields": kept})
        return self.docs[bit]


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


def split(count: int, answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The answer of a composed search as ``count`` answers shaped like single-rule searches."""
    aggs = answer.get("aggregations", {})
    return [{"aggregations": aggs.get(f"r{n}", {})} for n in range(count)]


def findings(
    rule: Rule, window: Window, tuning: Tuning, options: Options, answer: Mapping[str, Any]
) -> list[Finding]:
    if rule.kind is Kind.QUERY:
        return list(_plain_findings(window, answer))
    return _correlation_findings(rule, window, tuning, options, answer)


# ----------------------------------------------------------------------------- plain rules
def _match(query: str, tuning: Tuning, at: datetime) -> dict[str, Any]:
    must_not = [{"term": {e.field: e.value}} for e in tuning.active_exceptions(at)]
    qs = {"query_string": {"query": query, "analyze_wildcard": True}}
    return {"bool": {"filter": [qs], "must_not": must_not}}


def _samples() -> dict[str, Any]:
    return {"top_hits": {"size": SAMPLES, "_source": False, "docvalue_fields": _SAMPLE_FIELDS,
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


def _plain_findings(window: Window, answer: Mapping[str, Any]) -> Iterator[Finding]:
    if "places" in answer:  # a scan (:func:`scanned`)
        docs = answer["docs"]
        for province, ward, count, events in answer["places"]:
            group = {} if province == NONE else {"locality.province.code": province}
            if ward != NONE:
                group["locality.ward.code"] = ward
            yield Finding(window, group, count, tuple(docs[b] for b in _bits(events, SAMPLES)))
        return
    for province in answer.get("aggregations", {}).get("province", {}).get("buckets", []):
        for ward in province["ward"]["buckets"]:
            group = {"locality.province.code": str(province["key"])}
            if ward["key"] != NONE:
                group["locality.ward.code"] = str(ward["key"])
            if group["locality.province.code"] == NONE:
                del group["locality.province.code"]
            yield Finding(window, group, int(ward["doc_count"]), _samples_of(ward["samples"]))


def _hits(samples: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    """Sample events as nested documents (``{"locality": {"province": {"code": …}}}``)."""
    return tuple(_doc(hit) for hit in samples["hits"]["hits"])


def _doc(hit: Mapping[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {"_id": hit["_id"], "_index": hit["_index"]}
    for dotted, values in hit.get("fields", {}).items():
        node = doc
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = values[0] if values else None
    return doc


# ----------------------------------------------------------------------------- correlations
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
    names = _Names()
    plans: list[Counting] = []
    wanted: dict[str, dict[str, Any]] = {}
    optional: dict[str, dict[str, Any]] = {}
    fields = dict.fromkeys(_SAMPLE_FIELDS)
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


def counted(plans: Sequence[Counting], answer: Mapping[str, Any]) -> list[dict[str, Any]] | None:
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
    docs = _Samples(hits)

    answers = []
    keys: dict[tuple[int, tuple[str, ...]], list[tuple[str, ...]]] = {}
    for plan in plans:
        rule = plan.rule
        events = _bits(_matches(plan.tree, masks, every))  # in time order, as the hits
        moments = [times[bit] for bit in events]
        grouped = []
        for bit in events:
            if (bit, rule.group_by) not in keys:
                keys[bit, rule.group_by] = _group_keys(hits[bit], rule.group_by)
            grouped.append((bit, keys[bit, rule.group_by]))
        bases = [(rid, _matches(tree, masks, every)) for rid, tree in plan.bases]
        slides = []
        for window in plan.ranges:
            low = bisect.bisect_left(moments, _millis(window["from"]))
            high = bisect.bisect_left(moments, _millis(window["to"]))
            groups: dict[tuple[str, ...], list[int]] = {}
            for bit, in_groups in grouped[low:high]:
                for key in in_groups:
                    groups.setdefault(key, []).append(bit)
            leaves = []
            for key, bits in groups.items():
                if len(bits) < plan.minimum:
                    continue
                leaf: dict[str, Any] = {
                    "doc_count": len(bits),
                    "last": {"value": times[bits[-1]]},
                    "first": {"value": times[bits[0]]},
                    "samples": {"docs": [docs[b] for b in bits[:SAMPLES]]},
                }
                if rule.value_field:
                    values = {_key(v) for b in bits for v in _values(hits[b], rule.value_field)}
                    leaf["values"] = {"value": len(values), "names": sorted(values)[:VALUE_NAMES]}
                leaf["wards"] = sorted(
                    {_key(v) for b in bits for v in _values(hits[b], "locality.ward.code")}
                )
                classes = Counter(_key(v) for b in bits for v in _values(hits[b], CLASS_FIELD))
                leaf["classes"] = {"buckets": [{"key": k, "doc_count": n}
                                               for k, n in classes.most_common()]}  # fmt: skip
                if bases:
                    leaf["rules"] = {"buckets": {rid: {"doc_count": sum(1 for b in bits
                                                                      if mask >> b & 1)}
                                                 for rid, mask in bases}}  # fmt: skip
                leaves.append((dict(zip(rule.group_by, key, strict=True)), leaf))
            slides.append((window["key"], leaves))
        answers.append({"slides": slides})
    return answers


def _bits(mask: int, limit: int | None = None) -> list[int]:
    """The positions of the set bits of ``mask``, lowest first (the hits' time order), at most
    ``limit`` of them."""
    found: list[int] = []
    while mask and len(found) != limit:
        low = mask & -mask
        found.append(low.bit_length() - 1)
        mask ^= low
    return found


@functools.lru_cache(maxsize=8192)
def _millis(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000


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
    samples = _hits(answer.get("aggregations", {})[f"f{n}"]["samples"])
    return replace(finding, samples=samples, span=None)


def _min_docs(rule: Rule, tuning: Tuning) -> int:
    assert rule.condition is not None
    if rule.kind is not Kind.EVENT_COUNT:
        return 1
    counts = [rule.condition.min_count] + [
        rule.condition.with_count(c).min_count for _, c in tuning.thresholds
    ]
    return min(counts)


def _correlation_findings(
    rule: Rule, window: Window, tuning: Tuning, options: Options, answer: Mapping[str, Any]
) -> list[Finding]:
    assert rule.condition is not None
    assert rule.timespan is not None
    best: dict[tuple[datetime, tuple[tuple[str, str], ...]], Finding] = {}
    slides = answer.get("slides")
    if slides is None:  # aggregations (:func:`compose`), not a scan (:func:`counted`)
        slide = answer.get("aggregations", {}).get("slide", {}).get("buckets", {})
        slides = [(key, _leaves(bucket, rule.group_by, {})) for key, bucket in slide.items()]
    for key, leaves in slides:
        end, slot = _slot(key, rule.interval)
        for group, leaf in leaves:
            value = _value(rule, leaf)
            samples = _samples_of(leaf["samples"]) if "samples" in leaf else ()
            province = group.get("locality.province.code") or _province(samples)
            condition = tuning.threshold_for(province, rule.condition)
            last = leaf["last"].get("value")
            if not condition.holds(value) or last is None or last < slot.start.timestamp() * 1000:
                continue
            ident = (slot.start, tuple(sorted(group.items())))
            if ident not in best or best[ident].count < value:
                slide = (iso(end - rule.timespan), iso(end))
                span = None if "samples" in leaf else slide
                first = leaf.get("first", {}).get("value")
                best[ident] = Finding(slot, group, value, samples, span, slide,
                                      int(leaf["doc_count"]), first, _detail(leaf))  # fmt: skip
    return sorted(best.values(), key=lambda f: (f.window.start, sorted(f.group.items())))


@functools.lru_cache(maxsize=8192)
def _slot(key: str, interval: timedelta) -> tuple[datetime, Window]:
    """The end of a sub-window (its key), and the slot of ``interval`` it closes."""
    end = datetime.fromisoformat(key.replace("Z", "+00:00"))
    start = floor(end - timedelta(milliseconds=1), interval)
    return end, Window(start, start + interval)


def _samples_of(samples: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    return tuple(samples["docs"]) if "docs" in samples else _hits(samples)


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


def _detail(leaf: Mapping[str, Any]) -> dict[str, Any]:
    """A finding's distinct values (a scan's, or the ``names`` terms of the aggregations) and
    the communes its events come from (scans only)."""
    detail: dict[str, Any] = {}
    names = leaf.get("values", {}).get("names")
    if names is None and "names" in leaf:
        names = [str(b.get("key_as_string", b["key"])) for b in leaf["names"]["buckets"]]
    if names:
        detail["values"] = list(names)
    if leaf.get("wards"):
        detail["wards"] = list(leaf["wards"])
    buckets = leaf.get("classes", {}).get("buckets", ())
    if buckets:
        detail["classes"] = {str(b["key"]): int(b["doc_count"]) for b in buckets}
    return detail


def _value(rule: Rule, leaf: Mapping[str, Any]) -> int:
    if rule.kind is Kind.VALUE_COUNT:
        return int(leaf["values"]["value"])
    if rule.kind is Kind.TEMPORAL:
        return sum(1 for b in leaf["rules"]["buckets"].values() if b["doc_count"] > 0)
    return int(leaf["doc_count"])
