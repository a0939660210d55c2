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
    #: Lucene queries of the referenced rules (correlations), keyed by the rule's id.
    base: tuple[tuple[str, str], ...] = ()
    group_by: tuple[str, ...] = ()
    timespan: timedelta | None = None
    condition: Condition | None = None
    value_field: str | None = None
    #: False for a plain rule that only feeds a correlation (Sigma's ``generate: false``).
    alerts: bool = True
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
