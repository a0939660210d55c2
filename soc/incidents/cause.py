"""The cause of an alert: service x failure class x locality x entity, derived in one place.

Every detector (Sigma rules, correlations, the anomaly model, rules still to be written) writes an
:class:`~soc.alerts.models.Alert`; :func:`cause_of` reads the fields that say *what is wrong where*
and nothing else, so alerts of different detectors about the same failure get the same cause:

- ``service``: ``alert.service`` ("" when the alert has none);
- ``failure_class``: see ``causes.yaml`` (the alert's own ``failure_class``, a ``soc.failure.<x>``
  rule tag, the events' ``error.type`` in ``explanation.failure_class`` translated by
  ``event_classes``, the mapping of rule ids and anomaly kinds, else ``rule:<id>``);
- ``province``/``ward``: ``alert.place``;
- ``entity``: ``alert.entity`` only when it names a distinct thing (an IP, an account, a carrier)
  that the detector grouped by (its type is a key of ``alert.group``); a service, a locality or an
  error code is not an entity, nor is an IP a plain rule took from a sample event.

The mapping is data (``causes.yaml``), validated at first use; errors name the file and line. This
module reads no index and decides no grouping (``soc.incidents.grouping`` does).
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from typing import Any

import orjson
import yaml
from pydantic import BaseModel, ConfigDict

from soc.alerts.models import Alert
from soc.errors import ConfigError

_TAG_PREFIX = "soc.failure."


class Cause(BaseModel):
    """What is wrong, on which service, where, and with which entity (None: none in particular)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service: str
    failure_class: str
    province_code: str
    ward_code: str | None = None
    entity: str | None = None

    @property
    def key(self) -> str:
        """The exact cause: one episode of it is one incident."""
        return _digest(["cause", *self._place(), self.entity or ""])

    @property
    def place_key(self) -> str:
        """The cause without its entity: where an alert that names no entity looks for company."""
        return _digest(["place", *self._place()])

    @property
    def province_key(self) -> str:
        """The cause in the whole province, whichever commune: what a parent incident gathers."""
        return _digest(
            ["province", self.service, self.failure_class, self.province_code, self.entity or ""]
        )

    def _place(self) -> list[str]:
        return [self.service, self.failure_class, self.province_code, self.ward_code or ""]

    def describe(self) -> str:
        where = self.ward_code or self.province_code
        who = f" {self.entity}" if self.entity else ""
        return f"{self.service or '-'}/{self.failure_class} at {where}{who}"


class CauseMap(BaseModel):
    """``causes.yaml`` validated: rule id → failure class (optionally per service)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    classes: dict[str, str]
    event_classes: dict[str, str]
    rules: dict[str, str | dict[str, str]]
    not_entities: frozenset[str]

    def from_event(self, error_type: str) -> str:
        """An event's ``error.type`` as a class (a class name stays itself)."""
        if error_type in self.classes:
            return error_type
        return self.event_classes.get(error_type, error_type)

    def failure_class(self, rule_id: str, service: str | None) -> str | None:
        found = self.rules.get(rule_id)
        if isinstance(found, dict):
            return found.get(service or "", found.get("default"))
        return found


@cache
def cause_map() -> CauseMap:
    """The packaged mapping, checked: every class a rule names must be declared."""
    source = resources.files("soc.incidents").joinpath("causes.yaml")
    try:
        raw: Any = yaml.safe_load(source.read_text("utf-8"))
        mapping = CauseMap.model_validate(raw)
    except (yaml.YAMLError, ValueError) as exc:
        raise ConfigError(f"{source}: not a valid cause mapping: {exc}") from None
    named_by: dict[str, str | dict[str, str]] = {
        f"event class {k}": v for k, v in mapping.event_classes.items()
    }
    named_by.update(mapping.rules)
    for rule_id, value in named_by.items():
        named = value.values() if isinstance(value, dict) else [value]
        unknown = sorted(set(named) - set(mapping.classes))
        if unknown:
            line = _line_of(source.read_text("utf-8"), rule_id.removeprefix("event class "))
            raise ConfigError(
                f"{source}:{line}: rule {rule_id} names undeclared class(es) {', '.join(unknown)}"
            )
    return mapping


def failure_class(alert: Alert, mapping: CauseMap | None = None) -> str:
    """The alert's failure class, by the rules in the module docstring (never empty)."""
    mapping = mapping or cause_map()
    own = getattr(alert, "failure_class", None)
    if isinstance(own, str) and own:
        return mapping.from_event(own)
    for tag in alert.rule.tags:
        if tag.startswith(_TAG_PREFIX) and len(tag) > len(_TAG_PREFIX):
            return tag[len(_TAG_PREFIX) :]
    seen = alert.explanation.get("failure_class")
    if isinstance(seen, str) and seen:
        return mapping.from_event(seen)
    return mapping.failure_class(alert.rule.id, alert.service) or f"rule:{alert.rule.id}"


def entity_of(alert: Alert, mapping: CauseMap | None = None) -> str | None:
    """``type=value`` when the alert names a distinct entity it was grouped by, else None."""
    entity = alert.entity
    if entity is None or entity.type in (mapping or cause_map()).not_entities:
        return None
    if entity.type not in alert.group:
        return None  # taken from a sample event: incidental, not what the detector counted
    return f"{entity.type}={entity.value}"


def cause_of(alert: Alert) -> Cause:
    """The cause of one alert (see the module docstring for the fields read)."""
    mapping = cause_map()
    place = alert.place
    return Cause(
        service=alert.service or "",
        failure_class=failure_class(alert, mapping),
        province_code=place.province_code if place else "",
        ward_code=place.ward_code if place else None,
        entity=entity_of(alert, mapping),
    )


def _digest(parts: list[str]) -> str:
    return hashlib.blake2b(orjson.dumps(parts), digest_size=12).hexdigest()


def _line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    return 0
