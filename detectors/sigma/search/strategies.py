"""How the (rule, window) searches of one evaluation are grouped and read: three strategies with
one interface (:class:`Search`: a body, and its answer read into one typed answer per rule).

- :class:`Scan`: plain rules over one window share one scan of its matching events (``scan``);
- :class:`Count`: correlations over one scope share one scan of their events, counted in Python
  (``counting``);
- :class:`Composed`: rules with the same aggregation scope share one search of per-rule
  aggregations (``bodies.compose``), ``batch`` rules at most: what a busy window (a scan answers
  None), scans turned off (``scan_limit`` 0) or a failed shared search (rule by rule) falls back to.
It must not send requests (``detectors.sigma.runner`` does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from detectors.base import Window
from detectors.sigma.models import Rule
from detectors.sigma.search.answers import split
from detectors.sigma.search.bodies import compose
from detectors.sigma.search.counting import correlation_scan, counted
from detectors.sigma.search.models import Answer, Parts, Tuning
from detectors.sigma.search.scan import scan, scanned


@dataclass(frozen=True, slots=True)
class Item:
    """One planned search: a rule over a window with its tuning, and the parts of its search."""

    rule: Rule
    window: Window
    tuning: Tuning
    parts: Parts


class Search(Protocol):
    #: The positions, in the evaluation's items, of the rules this search answers for.
    members: list[int]

    @property
    def body(self) -> Mapping[str, Any]: ...

    def read(self, answer: Mapping[str, Any]) -> list[Answer] | None:
        """One answer per member, or None: more events than a scan reads (search them again
        with :class:`Composed`)."""
        ...


class Scan:
    """Plain rules over one window: one scan of its matching events."""

    def __init__(self, members: list[int], items: Sequence[Item], limit: int) -> None:
        self.members = members
        self.body, self.plan = scan([items[n].parts for n in members], limit)

    def read(self, answer: Mapping[str, Any]) -> list[Answer] | None:
        return scanned(self.plan, answer)


class Count:
    """Correlations over one scope: one scan of their events, counted in Python."""

    def __init__(self, members: list[int], items: Sequence[Item], limit: int) -> None:
        self.members = members
        self.body, self.plans = correlation_scan(
            [(items[n].rule, items[n].parts) for n in members], limit
        )

    def read(self, answer: Mapping[str, Any]) -> list[Answer] | None:
        return counted(self.plans, answer)


class Composed:
    """Rules sharing an aggregation scope: one search, each rule's aggregations under a filter."""

    def __init__(self, members: list[int], items: Sequence[Item]) -> None:
        self.members = members
        self.rules = [items[n].rule for n in members]
        self.body = compose([items[n].parts for n in members])

    def read(self, answer: Mapping[str, Any]) -> list[Answer]:
        return split(self.rules, answer)


def plan(items: Sequence[Item], *, scan_limit: int, scan_batch: int, batch: int) -> list[Search]:
    """The searches of ``items``: plain rules over one window share a :class:`Scan`,
    correlations over one scope (same window, timespan and step) a :class:`Count`, ``scan_batch``
    rules at most; with scans off (``scan_limit`` 0), :func:`composed` searches."""
    if scan_limit <= 0:
        return composed(items, range(len(items)), batch)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for n, item in enumerate(items):
        plain = item.parts.key[0] == "plain"
        key = ("scan", *item.parts.key) if plain else ("count", repr(item.parts.scope))
        groups.setdefault(key, []).append(n)
    searches: list[Search] = []
    for key, members in groups.items():
        kind = Scan if key[0] == "scan" else Count
        searches += [kind(members[i : i + scan_batch], items, scan_limit)
                     for i in range(0, len(members), scan_batch)]  # fmt: skip
    return searches


def composed(items: Sequence[Item], members: Sequence[int], batch: int) -> list[Search]:
    """:class:`Composed` searches of ``members``: rules sharing an aggregation scope together,
    ``batch`` at most (it bounds the aggregation buckets of one search)."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for n in members:
        groups.setdefault(items[n].parts.key, []).append(n)
    return [Composed(group[i : i + batch], items)
            for group in groups.values() for i in range(0, len(group), batch)]  # fmt: skip
