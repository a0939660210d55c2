"""The one place that knows soc's index and template names.

Every index soc owns starts with ``SOC_INDEX_PREFIX`` (default ``soc``), so several soc
installations, or the tests, can share one cluster without seeing each other. Events go to daily
indices named by the event's UTC day, so retention deletes whole indices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum


class Kind(StrEnum):
    """The kinds of index soc owns; each has one template in ``soc/es/mappings``."""

    EVENTS = "events"
    ALERTS = "alerts"
    INCIDENTS = "incidents"
    OUTBOX = "outbox"
    AUDIT = "audit"
    STATE = "state"
    DEADLETTER = "deadletter"


@dataclass(frozen=True)
class Indices:
    """Index names under one prefix."""

    prefix: str = "soc"
    #: Index patterns the detectors search for events instead of soc's own (``filebeat-*``,
    #: ``logs-*``: detectors/sigma/sources.py); ``""`` among them stands for soc's own.
    sources: tuple[str, ...] = ()

    def name(self, kind: Kind) -> str:
        """The concrete index of a fixed-name kind (everything but events)."""
        if kind is Kind.EVENTS:
            raise ValueError("events live in daily indices: use events_for(day)")
        return f"{self.prefix}-{kind.value}"

    def pattern(self, kind: Kind) -> str:
        """The index pattern a template for ``kind`` applies to."""
        if kind is Kind.EVENTS:
            return f"{self.prefix}-{kind.value}-*"
        return self.name(kind)

    def template(self, kind: Kind) -> str:
        return f"{self.prefix}-{kind.value}"

    @property
    def settings_component(self) -> str:
        return f"{self.prefix}-settings"

    @property
    def ecs_component(self) -> str:
        return f"{self.prefix}-ecs"

    @property
    def events(self) -> str:
        """Pattern to search all events (soc's own, or the ``sources`` given)."""
        own = self.pattern(Kind.EVENTS)
        if not self.sources:
            return own
        return ",".join(p or own for p in self.sources)

    def events_for(self, when: date | datetime) -> str:
        """The daily events index for a UTC day (an aware datetime is converted to UTC)."""
        if isinstance(when, datetime):
            if when.tzinfo is None:
                raise ValueError("naive datetime: soc stores UTC, pass an aware datetime")
            when = when.astimezone(UTC).date()
        return f"{self.prefix}-{Kind.EVENTS.value}-{when:%Y.%m.%d}"

    @property
    def alerts(self) -> str:
        return self.name(Kind.ALERTS)

    @property
    def incidents(self) -> str:
        return self.name(Kind.INCIDENTS)

    @property
    def outbox(self) -> str:
        return self.name(Kind.OUTBOX)

    @property
    def audit(self) -> str:
        return self.name(Kind.AUDIT)

    @property
    def state(self) -> str:
        return self.name(Kind.STATE)

    @property
    def deadletter(self) -> str:
        return self.name(Kind.DEADLETTER)

    @property
    def all_patterns(self) -> list[str]:
        return [self.pattern(k) for k in Kind]
