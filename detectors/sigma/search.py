"""Elasticsearch request bodies for one rule over one window, and the findings in the answers.

Plain rules select events *ingested* in the window (``event.ingested``), so an event that arrives
late is still seen exactly once, by the window in which it arrived. Correlations count events by
their ``@timestamp`` in sliding sub-windows (``date_range``, overlapping ranges) so a burst that
straddles a window boundary is still seen whole. Only features of the bare Elasticsearch server are
used: ``query_string``, ``terms``, ``date_range``, ``filters``, ``cardinality``, ``top_hits``.
This module builds and reads bodies; it must not send requests.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from detectors.base import Window, floor, iso
from detectors.sigma.models import Condition, Kind, Rule

NONE = "__none__"
SAMPLES = 5
GROUP_SIZE = 1000
#: Matching events of one window read by a scan (:func:`scan`); above, per-rule aggregations.
SCAN_LIMIT = 5000
#: Read from doc values, not ``_source``: loading stored ``_source`` for the samples of hundreds
#: of rules was the largest cost of a cycle (bench/reports/detect-cycle.md).
_SAMPLE_FIELDS = ["locality.province.code", "locality.ward.code", "service.name", "source.ip",
                  "user.name"]  # fmt: skip


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
    #: A plain rule's Lucene query when no exception applies: :func:`scan` may share its parts.
    query: str = ""


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


def scan(batch: Sequence[Parts], limit: int) -> tuple[dict[str, Any], list[Node]]:
    """One search for plain rules sharing a window that returns the window's events matching
    any part of any rule (up to ``limit``), each naming the parts it matches
    (``matched_queries``), instead of one aggregation tree per rule: the window is read once,
    and a part shared by many rules (``event.category:web``, ``*sqlmap*``) is parsed and
    matched once, not once per rule. Returns the body, and each rule's query as a tree of named
    parts for :func:`scanned` to evaluate."""
    names: dict[str, str] = {}
    named: list[dict[str, Any]] = []

    def name(clause: dict[str, Any], key: str) -> str:
        if key not in names:
            names[key] = f"q{len(names)}"
            named.append({"bool": {"filter": [clause], "_name": names[key]}})
        return names[key]

    def tree(node: Node) -> Node:
        if isinstance(node, str):
            return name({"query_string": {"query": node, "analyze_wildcard": True}}, node)
        return (node[0], [tree(child) for child in node[1]])

    trees: list[Node] = []
    for n, part in enumerate(batch):
        if part.query:
            trees.append(tree(decompose(part.query)))
        else:  # exceptions apply: the rule's whole filter is one part of its own
            trees.append(name(part.match, f"rule {n}"))
    anything = {"bool": {"should": named, "minimum_should_match": 1}}
    body = {
        "size": limit,
        "track_total_hits": limit + 1,
        "_source": False,
        "docvalue_fields": _SAMPLE_FIELDS,
        # The order of top_hits in the aggregations: the samples are the earliest events.
        "sort": [{"@timestamp": "asc"}],
        "query": {"bool": {"filter": [*batch[0].scope, anything]}},
    }
    return body, trees


#: A query as a tree: a part (a Lucene query of its own), or ("AND"|"OR", children).
Node = str | tuple[str, list[Any]]


@functools.lru_cache(maxsize=8192)
def decompose(query: str) -> Node:
    """``query`` as a tree of parts where that is certain to mean the same: split only at
    top-level ``AND``/``OR`` of one kind (never mixed: Lucene's precedence), around parentheses
    that enclose all; a level with a ``NOT`` clause, quotes or brackets left open stays whole."""
    text = query.strip()
    pieces, ops = _top_level(text)
    if pieces is None:
        return text
    if not ops:
        inner = text[1:-1].strip()
        if text.startswith("(") and _closing(text) == len(text) - 1 and not _negated(inner):
            return decompose(inner)
        return text
    if len(ops) > 1 or any(_negated(p) for p in pieces):
        return text
    return (ops.pop(), [decompose(p) for p in pieces])


def _negated(piece: str) -> bool:
    """A clause with a prefix operator: kept inside its level (a lone ``NOT`` means something
    else than within its parentheses)."""
    return piece.startswith(("NOT ", "-", "+", "!"))


def _outside(text: str) -> Iterator[tuple[int, int]]:
    """The positions of ``text`` outside quotes, escapes and regular expressions, each with the
    bracket depth there (an opening bracket is at the depth it opens from, a closing one at the
    depth it returns to). ValueError when quotes, a regular expression or brackets are unclosed."""
    depth, i, quoted = 0, 0, False
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if quoted:
            quoted = c != '"'
        elif c == '"':
            quoted = True
        elif c == "/" and (i == 0 or text[i - 1] in ":( "):  # a regular expression
            end = _regex_end(text, i)
            if end is None:
                raise ValueError("unclosed regular expression")
            i = end
        else:
            if c in ")]}":
                depth -= 1
                if depth < 0:
                    raise ValueError("unbalanced brackets")
            yield i, depth
            if c in "([{":
                depth += 1
        i += 1
    if depth or quoted:
        raise ValueError("unclosed bracket or quote")


def _top_level(text: str) -> tuple[list[str] | None, set[str]]:
    """The pieces of ``text`` between top-level ``AND``/``OR``, and the operators met."""
    pieces: list[str] = []
    ops: set[str] = set()
    start = 0
    try:
        for i, depth in _outside(text):
            if depth or i < start or text[i] != " ":
                continue
            for op in ("AND", "OR"):
                if text.startswith(f" {op} ", i):
                    pieces.append(text[start:i].strip())
                    ops.add(op)
                    start = i + len(op) + 2
                    break
    except ValueError:
        return None, ops
    pieces.append(text[start:].strip())
    return (pieces if all(pieces) else None), ops


def _regex_end(text: str, at: int) -> int | None:
    i = at + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == "/":
            return i
        i += 1
    return None


def _closing(text: str) -> int:
    """Where the parenthesis opening ``text`` closes (-1 if it does not, or if ``text`` does not
    balance)."""
    try:
        closed = next((i for i, depth in _outside(text) if depth == 0 and text[i] == ")"), -1)
        for _ in _outside(text):  # the whole text must balance
            pass
    except ValueError:
        return -1
    return closed


def _matches(node: Node, masks: Mapping[str, int]) -> int:
    """The events (a bit per hit) matching ``node``, from the events matching each part."""
    if isinstance(node, str):
        return masks.get(node, 0)
    values = [_matches(child, masks) for child in node[1]]
    result = values[0]
    for value in values[1:]:
        result = result & value if node[0] == "AND" else result | value
    return result


def scanned(trees: Sequence[Node], answer: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The answer of :func:`scan` as one answer per rule shaped like single plain-rule searches
    (province buckets, ward buckets, samples), or None when the window held more matching
    events than the scan returned (the caller then falls back to :func:`compose`)."""
    hits = answer.get("hits", {}).get("hits", [])
    if answer.get("hits", {}).get("total", {}).get("value", 0) > len(hits):
        return None
    masks: dict[str, int] = {}
    places = []
    docs = _hits({"hits": {"hits": hits}})  # each event converted once, shared by the rules
    for bit, hit in enumerate(hits):
        for name in hit.get("matched_queries", ()):
            masks[name] = masks.get(name, 0) | (1 << bit)
        fields = hit.get("fields", {})
        province = str((fields.get("locality.province.code") or [NONE])[0])
        places.append((province, str((fields.get("locality.ward.code") or [NONE])[0])))
    answers = []
    for node in trees:
        groups: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
        mask = _matches(node, masks)
        while mask:
            low = mask & -mask
            bit = low.bit_length() - 1
            mask ^= low
            province, ward = places[bit]
            groups.setdefault(province, {}).setdefault(ward, []).append(docs[bit])
        answers.append({"aggregations": {"province": {"buckets": _buckets(groups)}}})
    return answers


def _buckets(by_province: Mapping[str, Mapping[str, list[Mapping[str, Any]]]]) -> list[Any]:
    """Terms buckets as Elasticsearch orders them (count descending, then key), capped alike."""
    provinces = []
    for province, by_ward in by_province.items():
        order = sorted(by_ward, key=lambda ward: (-len(by_ward[ward]), ward))[:GROUP_SIZE]
        wards = [{"key": ward, "doc_count": len(by_ward[ward]),
                  "samples": {"docs": by_ward[ward][:SAMPLES]}}
                 for ward in order]  # fmt: skip
        total = sum(len(events) for events in by_ward.values())
        provinces.append((-total, province, {"key": province, "doc_count": total,
                                             "ward": {"buckets": wards}}))  # fmt: skip
    provinces.sort(key=lambda item: item[:2])
    return [bucket for _, _, bucket in provinces[:GROUP_SIZE]]


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
    start, end = window.iso()
    scope = (
        {"range": {"event.ingested": {"gte": start, "lt": end}}},
        # Bounds the daily indices searched; events later than this are out of scope by design.
        {"range": {"@timestamp": {"gte": iso(window.start - options.lookback), "lt": end}}},
    )
    aggs = {"province": {
        "terms": {"field": "locality.province.code", "size": GROUP_SIZE, "missing": NONE},
        "aggs": {"ward": {
            "terms": {"field": "locality.ward.code", "size": GROUP_SIZE, "missing": NONE},
            "aggs": {"samples": _samples()},
        }},
    }}  # fmt: skip
    match = _match(rule.query, tuning, window.end)
    shared = "" if match["bool"]["must_not"] else rule.query
    return Parts(("plain", start, end), scope, match, aggs, query=shared)


def _plain_findings(window: Window, answer: Mapping[str, Any]) -> Iterator[Finding]:
    for province in answer.get("aggregations", {}).get("province", {}).get("buckets", []):
        for ward in province["ward"]["buckets"]:
            group = {"locality.province.code": str(province["key"])}
            if ward["key"] != NONE:
                group["locality.ward.code"] = str(ward["key"])
            if group["locality.province.code"] == NONE:
                del group["locality.province.code"]
            samples = ward["samples"]
            docs = tuple(samples["docs"]) if "docs" in samples else _hits(samples)
            yield Finding(window, group, int(ward["doc_count"]), docs)


def _hits(samples: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    """Sample events as nested documents (``{"locality": {"province": {"code": …}}}``)."""
    found = []
    for hit in samples["hits"]["hits"]:
        doc: dict[str, Any] = {"_id": hit["_id"], "_index": hit["_index"]}
        for dotted, values in hit.get("fields", {}).items():
            node = doc
            *parents, leaf = dotted.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = values[0] if values else None
        found.append(doc)
    return tuple(found)


# ----------------------------------------------------------------------------- correlations
def resolution(rule: Rule) -> timedelta:
    """Step between sliding sub-windows: a burst within ``timespan - step`` is seen whole."""
    assert rule.timespan is not None
    step = min(rule.interval, rule.timespan / 10)
    return max(timedelta(seconds=max(1, int(step.total_seconds()))), timedelta(seconds=1))


def _positions(rule: Rule, window: Window, options: Options) -> list[datetime]:
    step = resolution(rule)
    first = floor(window.start - options.correlation_lookback, rule.interval)
    ends, at = [], first + step
    while at <= window.end:
        ends.append(at)
        at += step
    if not ends or ends[-1] < window.end:
        # The sub-window ending at the window's own end: an open window evaluated early
        # (``Engine(early=True)``) ends at "now", between two steps, and must see the newest events.
        ends.append(window.end)
    return ends


def _correlation_parts(rule: Rule, window: Window, tuning: Tuning, options: Options) -> Parts:
    assert rule.timespan is not None
    ends = _positions(rule, window, options)
    scope = (
        {"range": {"@timestamp": {"gte": iso(ends[0] - rule.timespan), "lt": iso(ends[-1])}}},
        # What a live run at the window's end could have seen: a catch-up run gives the same answer.
        {"range": {"event.ingested": {"lt": iso(window.end)}}},
    )
    ranges = tuple({"key": iso(p), "from": iso(p - rule.timespan), "to": iso(p)} for p in ends)
    # The newest event of a sub-window tells in which slot the condition became true, so a burst
    # alerts in the slots where it happens, not for a whole timespan after it ended.
    inner: dict[str, Any] = {"last": {"max": {"field": "@timestamp"}}}
    if needs_samples(rule, tuning):
        inner["samples"] = _samples()
    if rule.kind is Kind.VALUE_COUNT:
        inner["values"] = {"cardinality": {"field": rule.value_field}}
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
    key = ("correlation", iso(window.end), *(r["key"] + r["from"] for r in ranges))
    match = _match(rule.combined_query, tuning, window.end)
    return Parts(key, scope, match, aggs, ranges)


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
    return Finding(finding.window, finding.group, finding.count, samples)


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
    slide = answer.get("aggregations", {}).get("slide", {}).get("buckets", {})
    for key, bucket in slide.items():
        end = datetime.fromisoformat(key.replace("Z", "+00:00"))
        slot_start = floor(end - timedelta(milliseconds=1), rule.interval)
        slot = Window(slot_start, slot_start + rule.interval)
        for group, leaf in _leaves(bucket, rule.group_by, {}):
            value = _value(rule, leaf)
            samples = _hits(leaf["samples"]) if "samples" in leaf else ()
            province = group.get("locality.province.code") or _province(samples)
            condition = tuning.threshold_for(province, rule.condition)
            last = leaf["last"].get("value")
            if not condition.holds(value) or last is None or last < slot.start.timestamp() * 1000:
                continue
            ident = (slot.start, tuple(sorted(group.items())))
            if ident not in best or best[ident].count < value:
                span = None if "samples" in leaf else (iso(end - rule.timespan), iso(end))
                best[ident] = Finding(slot, group, value, samples, span)
    return sorted(best.values(), key=lambda f: (f.window.start, sorted(f.group.items())))


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


def _value(rule: Rule, leaf: Mapping[str, Any]) -> int:
    if rule.kind is Kind.VALUE_COUNT:
        return int(leaf["values"]["value"])
    if rule.kind is Kind.TEMPORAL:
        return sum(1 for b in leaf["rules"]["buckets"].values() if b["doc_count"] > 0)
    return int(leaf["doc_count"])
