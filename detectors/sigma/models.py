"""Compiled detection rules: what the runner executes, validated at load, immutable.

A :class:`Rule` is either a plain Sigma rule (``kind=query``: one Lucene ``query_string``) or a
Sigma correlation (``event_count``, ``value_count``, ``temporal``) over the queries of the rules it
references, evaluated by soc with aggregations. This module holds data only: no Elasticsearch, no
pySigma objects leak out of the compiler.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from detectors.sigma.condition import Leaf, Node, Or
from soc.alerts.models import Severity


class Kind(StrEnum):
    QUERY = "query"
    EVENT_COUNT = "event_count"
    VALUE_COUNT = "value_count"
    TEMPORAL = "temporal"

    @property
    def is_correlation(self) -> bool:
        return self is not Kind.QUERY


_OPS: dict[str, Callable[[int, int], bool]] = {
    "gte": operator.ge, "gt": operator.gt, "lte": operator.le, "lt": operator.lt,
    "eq": operator.eq, "neq": operator.ne,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Condition:
    """A correlation's threshold, e.g. ``gte 5``."""

    op: str
    count: int

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"unsupported correlation condition {self.op!r}")

    def __str__(self) -> str:
        return f"{self.op} {self.count}"

    def holds(self, value: int) -> bool:
        return _OPS[self.op](value, self.count)

    @property
    def min_count(self) -> int:
        """The smallest count that can satisfy the condition (prunes aggregation buckets)."""
        if self.op == "gte":
            return max(self.count, 1)
        if self.op == "gt":
            return self.count + 1
        return 1

    def with_count(self, count: int) -> Condition:
        return Condition(self.op, count)


@dataclass(frozen=True, slots=True)
class Ratio:
    """soc's extension of a Sigma correlation (its ``soc: ratio:`` block, docs/detection.md):
    the correlation's events are failures, judged against the population they come from and
    the failure rate that population normally has, instead of a fixed count alone.

    A finding (the correlation's condition met: a minimum count) is kept only when, from the
    first failure of its sub-window on, ``failures`` out of ``total`` population events (same
    ``within`` values) are unlikely under the baseline rate: a binomial tail at most ``alpha``
    divided by the population's events an hour, so that ``alpha`` bounds the false alarms of a
    group per hour of its traffic whatever its volume (two failures in a row are evidence in a
    quiet commune, not in a city); and the observed ratio is at least ``lift`` times the baseline
    and at least ``min_ratio``. The baseline rate is learnt
    per ``baseline_by`` values from the ``baseline`` before the window (causal), shrunk towards
    the rate of all places together (``prior_weight`` events' worth), ``prior`` with no history.
    """

    #: The id of the plain rule selecting the population (every request of the service ...).
    of: str
    #: Its Lucene query.
    of_query: str
    within: tuple[str, ...]
    baseline_by: tuple[str, ...]
    baseline: timedelta = timedelta(days=7)
    alpha: float = 2e-4
    lift: float = 3.0
    min_ratio: float = 0.1
    prior: float = 0.01
    prior_weight: float = 200.0
    #: A rate never below this: a place with no failure in its history is not infinitely sure.
    floor: float = 0.001
    #: Judge a finding against the baseline of the failure classes it holds (``error.type``),
    #: not of every class the rule counts: two refused connections where refusals never happen
    #: are evidence even where timeouts are usual (at most ``alpha`` per hour for each set of
    #: classes that fires, and never more often than the classes together fail in a row).
    by_class: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1 or not 0 < self.prior < 1 or not 0 <= self.min_ratio <= 1:
            raise ValueError("alpha and prior must be in (0, 1), min_ratio in [0, 1]")
        if self.lift < 1 or self.prior_weight < 0 or not 0 < self.floor < 1:
            raise ValueError("lift must be >= 1, prior_weight >= 0, floor in (0, 1)")
        if self.baseline <= timedelta():
            raise ValueError("baseline must be a positive duration such as 7d")

    @property
    def split(self) -> tuple[str, ...]:
        """Fields that split the failures but not the population (the failure class)."""
        return tuple(f for f in self.baseline_by if f not in self.within)


@dataclass(frozen=True, slots=True)
class Case:
    """A named set of test events for a rule (``rules/**/*.tests.yaml``)."""

    name: str
    events: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class RuleTests:
    path: str
    fire: tuple[Case, ...] = ()
    quiet: tuple[Case, ...] = ()


@dataclass(frozen=True, slots=True)
class Rule:
    """One runnable rule."""

    id: str
    title: str
    level: Severity
    kind: Kind
    path: str
    line: int
    interval: timedelta
    name: str | None = None
    description: str = ""
    tags: tuple[str, ...] = ()
    falsepositives: tuple[str, ...] = ()
    query: str = ""
    #: A plain rule's query as pySigma's condition tree of Lucene parts (None: one part).
    tree: Node | None = None
    #: Lucene queries of the referenced rules (correlations), keyed by the rule's id.
    base: tuple[tuple[str, str], ...] = ()
    #: Their condition trees, in the same order.
    base_trees: tuple[Node | None, ...] = ()
    group_by: tuple[str, ...] = ()
    timespan: timedelta | None = None
    condition: Condition | None = None
    value_field: str | None = None
    #: False for a plain rule that only feeds a correlation (Sigma's ``generate: false``).
    alerts: bool = True
    #: soc's ratio-to-baseline extension of a correlation (:class:`Ratio`).
    ratio: Ratio | None = None
    tests: RuleTests | None = field(default=None, compare=False)

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def combined_query(self) -> str:
        """The Lucene query selecting every event the rule looks at."""
        if self.kind is Kind.QUERY:
            return self.query
        return " OR ".join(f"({q})" for _, q in self.base)

    @property
    def parts(self) -> Node:
        """:attr:`combined_query` as a tree of parts (:mod:`detectors.sigma.condition`)."""
        if self.kind is Kind.QUERY:
            return self.tree or Leaf(self.query)
        bases = [tree for _, tree in self.base_parts]
        return bases[0] if len(bases) == 1 else Or(tuple(bases))

    @property
    def base_parts(self) -> tuple[tuple[str, Node], ...]:
        """Each referenced rule's id and condition tree (correlations)."""
        trees = self.base_trees or (None,) * len(self.base)
        return tuple((rid, tree or Leaf(query))
                     for (rid, query), tree in zip(self.base, trees, strict=True))  # fmt: skip
