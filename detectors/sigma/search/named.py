"""Named query parts of one shared search, and which events match a rule from the parts they match.

A scan asks Elasticsearch for the events matching any part of any rule, each hit naming the parts
it matches (``matched_queries``); a rule's condition tree (:mod:`detectors.sigma.condition`) is
then evaluated on bit masks of hits. Leading-wildcard parts may instead be matched in Python on the
hits' doc values (:class:`~detectors.sigma.condition.Local`). No request is sent here.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import Any

from detectors.sigma.condition import And, Leaf, Local, Node, Not

#: A tree of named parts: a part's name, or ("AND"|"OR"|"NOT", children).
Named = str | tuple[str, list[Any]]


class Names:
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


def local_masks(local: Mapping[str, Local], hits: Sequence[Mapping[str, Any]]) -> dict[str, int]:
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


def matches(node: Named, masks: Mapping[str, int], every: int) -> int:
    """The events (a bit per hit, ``every`` hit) matching ``node``, from those of each part."""
    if isinstance(node, str):
        return masks.get(node, 0)
    values = [matches(child, masks, every) for child in node[1]]
    if node[0] == "NOT":
        return every & ~values[0]
    result = values[0]
    for value in values[1:]:
        result = result & value if node[0] == "AND" else result | value
    return result
