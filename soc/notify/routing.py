"""Who receives which incident email: the routes table, loaded from YAML and validated.

A route names a province (code or name), optionally a commune/ward and a service, a minimum
severity, and contacts (address, language, role ``team`` or ``lead``). The national SOC address
receives what no route covers, the last escalation step, and a copy of every high and critical
notice (``national_copy``, a minimum severity or ``none``). Every error names the file and line.

The one rule this module guarantees: a recipient is only ever given notices of a province it has a
route for (the national SOC sees all). It must not read Elasticsearch or send anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from soc.alerts.models import Severity
from soc.errors import LocalityError, RouteError
from soc.localities import catalogue
from soc.notify.models import IncidentNotice, Language, NoticeEvent, Recipient, Role, check_address
from soc.services import Service
from soc.yamlshape import YamlShapeError, documents


class _Map(dict[str, Any]):
    """A YAML mapping that remembers the line it started on."""

    line: int = 0


class _LineLoader(yaml.SafeLoader):
    """Safe YAML whose mappings are :class:`_Map` with their line number."""


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> _Map:
    pairs = loader.construct_mapping(node, deep=True)
    mapping = _Map({str(k): v for k, v in pairs.items()})
    mapping.line = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)


@dataclass(frozen=True)
class Route:
    province_code: str
    province_name: str
    contacts: tuple[Recipient, ...]
    min_severity: Severity = Severity.MEDIUM
    ward_code: str | None = None
    service: str | None = None
    line: int = 0

    def covers(self, notice: IncidentNotice) -> bool:
        """Whether the notice is about this route's province (and ward, service)."""
        if notice.province_code != self.province_code:
            return False
        if self.ward_code and self.ward_code not in {w.code for w in notice.wards}:
            return False
        return not (self.service and notice.service != self.service)


@dataclass(frozen=True)
class Routes:
    national: Recipient
    routes: tuple[Route, ...] = ()
    source: str = "<defaults>"
    #: The national SOC gets a copy of notices at least this severe (None: no copies).
    national_copy: Severity | None = Severity.HIGH

    def provinces_of(self, address: str) -> frozenset[str]:
        """Province codes a recipient may see; empty for the national SOC (it sees all)."""
        return frozenset(
            r.province_code for r in self.routes for c in r.contacts if c.address == address
        )

    def recipients(self, notice: IncidentNotice) -> list[Recipient]:
        """Who gets this notice, deduplicated by address, in a stable order."""
        if notice.event is NoticeEvent.ESCALATION:
            found = self._escalation(notice)
        else:
            found = [
                contact
                for route in self.routes
                if route.covers(notice) and notice.severity.rank >= route.min_severity.rank
                for contact in route.contacts
                if contact.role is Role.TEAM
            ]
            if not found and not any(r.covers(notice) for r in self.routes):
                found = [self.national]
            elif self.national_copy and notice.severity.rank >= self.national_copy.rank:
                found.append(self.national)
        unique: dict[str, Recipient] = {}
        for contact in found:
            unique.setdefault(contact.address, contact)
        return list(unique.values())

    def _escalation(self, notice: IncidentNotice) -> list[Recipient]:
        if notice.level >= 2:
            return [self.national]
        leads = [
            c for r in self.routes if r.covers(notice) for c in r.contacts if c.role is Role.LEAD
        ]
        return leads or [self.national]


def load_routes(path: Path, national: str) -> Routes:
    """Read and validate a routes file; :class:`RouteError` names the file and line."""
    name = str(path)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise RouteError(f"cannot read routes file: {exc.strerror}", name) from None
    return parse_routes(text, national, source=name)


def parse_routes(text: str, national: str, source: str = "<routes>") -> Routes:
    try:
        documents(text)  # bounded nesting before the recursive loader (an API upload)
        data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise RouteError(f"not valid YAML: {getattr(exc, 'problem', exc)}", source, line) from None
    except YamlShapeError as exc:
        raise RouteError(f"YAML {exc.message}", source, exc.line) from None
    if data is None:
        data = _Map()
    if not isinstance(data, _Map):
        raise RouteError("the file must be a mapping with 'national_soc' and 'routes'", source, 1)
    _only(data, {"national_soc", "national_copy", "routes"}, source)
    national_soc = _national(data.get("national_soc"), national, source, data.line)
    copy = _severity_or_none(data.get("national_copy", "high"), source, data.line)
    items = data.get("routes") or []
    if not isinstance(items, list):
        raise RouteError("'routes' must be a list", source, data.line)
    routes = tuple(_route(item, source) for item in items)
    return Routes(national=national_soc, routes=routes, source=source, national_copy=copy)


def _severity_or_none(value: object, source: str, line: int) -> Severity | None:
    if value is None or str(value) == "none":
        return None
    try:
        return Severity(str(value))
    except ValueError:
        known = ", ".join(s.value for s in Severity)
        raise RouteError(f"national_copy: use one of {known} or none", source, line) from None


def _only(item: _Map, allowed: set[str], source: str) -> None:
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise RouteError(
            f"unknown key(s) {', '.join(map(str, unknown))}; allowed: {', '.join(sorted(allowed))}",
            source,
            item.line,
        )


def _national(value: object, default: str, source: str, line: int) -> Recipient:
    raw: dict[str, Any] = {"address": default}
    if isinstance(value, str):
        raw = {"address": value}
    elif isinstance(value, _Map):
        line = value.line
        raw = dict(value)
    elif value is not None:
        raise RouteError("'national_soc' must be an address or a contact mapping", source, line)
    return _contact(raw, source, line)


def _contact(raw: dict[str, Any], source: str, line: int) -> Recipient:
    try:
        return Recipient.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RouteError(f"contact {where}: {first['msg']}", source, line) from None


def _route(item: object, source: str) -> Route:
    if not isinstance(item, _Map):
        raise RouteError("each route must be a mapping", source)
    _only(item, {"province", "ward", "service", "min_severity", "contacts"}, source)
    line = item.line
    if "province" not in item:
        raise RouteError("a route needs 'province' (code or name)", source, line)
    cat = catalogue()
    try:
        province = cat.province(item["province"])
        ward = cat.ward(item["ward"], province) if item.get("ward") is not None else None
    except LocalityError as exc:
        raise RouteError(str(exc), source, line) from None
    service = item.get("service")
    if service is not None and service not in {s.value for s in Service}:
        known = ", ".join(s.value for s in Service)
        raise RouteError(f"unknown service {service!r}; known: {known}", source, line)
    try:
        severity = Severity(str(item.get("min_severity", "medium")))
    except ValueError:
        known = ", ".join(s.value for s in Severity)
        raise RouteError(f"unknown min_severity; use one of {known}", source, line) from None
    contacts = _contacts(item.get("contacts"), source, line)
    return Route(
        province_code=province.code,
        province_name=province.name,
        contacts=contacts,
        min_severity=severity,
        ward_code=ward.code if ward else None,
        service=service,
        line=line,
    )


def _contacts(value: object, source: str, line: int) -> tuple[Recipient, ...]:
    if not isinstance(value, list) or not value:
        raise RouteError("a route needs a non-empty 'contacts' list", source, line)
    found: list[Recipient] = []
    for entry in value:
        if isinstance(entry, str):
            found.append(_contact({"address": entry}, source, line))
        elif isinstance(entry, _Map):
            _only(entry, {"address", "language", "name", "role"}, source)
            found.append(_contact(dict(entry), source, entry.line))
        else:
            raise RouteError("a contact is an address or a mapping with 'address'", source, line)
    return tuple(found)


def default_routes(national: str) -> Routes:
    """No routes file: everything goes to the national SOC."""
    return Routes(national=Recipient(address=check_address(national), language=Language.VI))


def validate_only_own_provinces(
    routes: Routes, address: str, notices: Sequence[IncidentNotice]
) -> None:
    """Refuse to put a notice of another province into one recipient's email."""
    if address == routes.national.address:
        return
    allowed = routes.provinces_of(address)
    for notice in notices:
        if notice.province_code not in allowed:
            raise RouteError(
                f"refusing to send incident {notice.incident_id} of province "
                f"{notice.province_code} to {address}, whose routes cover only "
                f"{', '.join(sorted(allowed)) or 'no province'}",
                routes.source,
            )
