"""Which indices each rule set searches, and where events without a locality come from.

By default every rule searches soc's own events (``<prefix>-events-*``). Many SOCs already ship
logs with Filebeat, Elastic Agent or Logstash into ECS indices (``filebeat-*``, ``logs-*`` data
streams); ``<rules dir>/sources.yaml`` points a folder of rules at them::

    sources:
      - folder: ecs                       # rules under rules/ecs/ ...
        indices: ["filebeat-*", "logs-*"] # ... search these patterns
        soc_events: false                 # and not soc's own events (true: both)
    inventory: ../inventory.yaml          # optional: the collectors' inventory (relative to
                                          # this file): host / IP / system id -> locality

Events in those indices carry no ``locality.*``: an alert whose events lack it is placed by the
inventory, from its first sample event's ``host.name``, ``host.hostname``, ``host.ip`` or
``observer.hostname`` (a system's ``hosts``) or ``service.name`` (a system's ``id``); see
:class:`LocatingEngine`. Errors name the file and line. This module must not search anything
itself: it chooses indices and places alerts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from detectors.sigma.alerting import to_alert
from detectors.sigma.models import Rule
from detectors.sigma.runner import Engine, Outcome
from soc.alerts.models import Alert, Place
from soc.inventory import Inventory, load_inventory
from soc.localities import Locality
from soc.yamlfile import load

SOURCES_FILE = "sources.yaml"
#: Fields of a sample event that name the machine or system it came from, in the order tried.
HOST_FIELDS = ("host.name", "host.hostname", "host.ip", "observer.hostname")
_PATTERN = r"^[a-z0-9*][a-z0-9*._-]{0,200}$"


class _SourceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    folder: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_/.-]*$")
    indices: tuple[str, ...] = Field(min_length=1, max_length=20)
    soc_events: bool = False

    @field_validator("indices")
    @classmethod
    def _patterns(cls, indices: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in indices:
            if not re.fullmatch(_PATTERN, pattern):
                raise ValueError(f"index pattern {pattern!r}: letters, digits, * . _ - only")
        return indices


class _SourcesSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sources: tuple[_SourceSpec, ...] = ()
    inventory: str | None = None


@dataclass(frozen=True)
class Sources:
    """The rule sets with their own indices, and the inventory that places their events."""

    root: Path
    folders: tuple[tuple[str, tuple[str, ...], bool], ...] = ()
    inventory: Inventory | None = None

    def patterns(self, rule: Rule) -> tuple[str, ...] | None:
        """The index patterns ``rule`` searches besides/instead of soc's (None: soc's only);
        soc's own events are named by the empty string."""
        try:
            relative = Path(rule.path).resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return None
        for folder, indices, soc_events in self.folders:
            if relative.startswith(folder.rstrip("/") + "/"):
                return (*indices, "") if soc_events else indices
        return None

    def partition(self, rules: Iterable[Rule]) -> list[tuple[tuple[str, ...] | None, list[Rule]]]:
        """Rules grouped by the indices they search (one engine each), soc's own first."""
        groups: dict[tuple[str, ...] | None, list[Rule]] = {None: []}
        for rule in rules:
            groups.setdefault(self.patterns(rule), []).append(rule)
        return [(k, v) for k, v in groups.items() if v or k is None]


def load_sources(rules_dir: Path) -> Sources:
    path = rules_dir / SOURCES_FILE
    if not path.exists():
        return Sources(rules_dir)
    data, locator = load(path)
    try:
        spec = _SourcesSpec.model_validate(data or {})
    except ValidationError as exc:
        raise locator.error(exc) from None
    inventory = None
    if spec.inventory:
        inventory = load_inventory((path.parent / spec.inventory).resolve())
    folders = tuple((s.folder, s.indices, s.soc_events) for s in spec.sources)
    return Sources(rules_dir, folders, inventory)


# ----------------------------------------------------------------------------- locality
class LocatingEngine(Engine):
    """The engine for a rule set over foreign indices: an alert whose events carry no
    ``locality.*`` is placed from the inventory by its first sample's host, IP or service."""

    inventory: Inventory | None = None

    def alerts(self, outcomes: Iterable[Outcome], now: datetime) -> list[Alert]:
        outcomes = list(outcomes)
        made = super().alerts(outcomes, now)
        if self.inventory is None:
            return made
        samples: dict[str, Mapping[str, Any]] = {}
        for outcome in outcomes:
            for finding in outcome.findings:
                if finding.samples:
                    samples[to_alert(outcome.rule, finding, self.indices, now).id] = (
                        finding.samples[0]
                    )
        return [self._placed(a, samples.get(a.id), self.inventory) for a in made]

    @staticmethod
    def _placed(alert: Alert, sample: Mapping[str, Any] | None, inventory: Inventory) -> Alert:
        if alert.place is not None or sample is None:
            return alert
        place, service = locate(sample, inventory)
        if place is None:
            return alert
        where = place.ward_name or place.province_name
        return alert.model_copy(update={"place": place, "title": f"{alert.title} in {where}"[:1024],
                                        "service": alert.service or service})  # fmt: skip


def locate(sample: Mapping[str, Any], inventory: Inventory) -> tuple[Place | None, str | None]:
    """Where an event comes from, by its host fields, then its ``service.name`` as a system id."""
    for name in HOST_FIELDS:
        for value in _values(sample, name):
            found = inventory.by_host(str(value))
            if found is not None and found.locality is not None:
                return _place(found.locality), found.service.value if found.service else None
    for value in _values(sample, "service.name"):
        for system in inventory.systems:
            if system.id == str(value) and system.locality is not None:
                service = system.service.value if system.service else None
                return _place(system.locality), service
    return None, None


def _values(doc: Mapping[str, Any], dotted: str) -> list[Any]:
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            flat = doc.get(dotted)
            node = flat
            break
        node = node[part]
    if node is None:
        return []
    return list(node) if isinstance(node, list) else [node]


def _place(locality: Locality) -> Place:
    province, ward = locality.province, locality.ward
    return Place(province_code=province.code, province_name=province.name,
                 ward_code=ward.code if ward else None,
                 ward_name=ward.name if ward else None)  # fmt: skip
