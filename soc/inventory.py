"""The inventory: which watched system (path, host or push token) is which service and locality.

Loaded from YAML, validated against :class:`soc.services.Service` and the official locality
catalogue, with errors naming file, line and key. Example::

    systems:
      - id: hanoi-portal                # unique, shown in events as soc.source.system
        service: web-portal
        province: "01"                  # code or name, diacritics optional
        ward: "00070"                   # optional commune/ward
        paths: ["/var/log/nginx/hn/*.log"]
        hosts: ["portal-hn-01"]         # syslog HOSTNAME / JSON "host"
        token_sha256: "<hex digest>"    # HTTP push: sha256 of the token the system sends
      - id: simulated-access            # placeholders take service and locality from the path
        paths: ["**/{province}/{service}/{ward}.access.log", "**/{province}/{service}.app.log"]

The YAML holds only a digest of each push token, never the token. This module must not read files
other than the inventory, nor touch Elasticsearch.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from soc.errors import CollectorConfigError, LocalityError
from soc.localities import Locality, catalogue
from soc.services import Service
from soc.yamlfile import Locator, load, loads

_PLACEHOLDER = re.compile(r"\{(province|ward|service)\}")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class _SystemSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=100)
    service: Service | None = None
    province: str | None = None
    ward: str | None = None
    paths: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    token_sha256: str | None = Field(default=None, pattern=_HEX64.pattern)
    #: A national system's push token may write events of any province.
    national: bool = False


class _InventorySpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    systems: tuple[_SystemSpec, ...] = ()


@dataclass(frozen=True)
class Attribution:
    """What the inventory knows about where a line came from."""

    system: str
    service: Service | None
    locality: Locality | None
    #: A push token of a provincial system: its events must stay in its province.
    bound: bool = False


@dataclass(frozen=True)
class System:
    id: str
    service: Service | None
    locality: Locality | None
    path_patterns: tuple[re.Pattern[str], ...]
    hosts: frozenset[str]
    token_sha256: str | None
    national: bool = False
    #: The patterns as written, and where (file, line): ``soc collect check`` names them.
    paths: tuple[str, ...] = ()
    path_lines: tuple[int | None, ...] = ()
    file: str | None = None
    key: str = ""


class Inventory:
    """Look-ups from a path, a host name or a push token to an :class:`Attribution`."""

    def __init__(self, systems: tuple[System, ...]) -> None:
        self.systems = systems
        self._hosts = {h: s for s in systems for h in s.hosts}

    def by_path(self, path: str) -> Attribution | None:
        for system in self.systems:
            for pattern in system.path_patterns:
                found = pattern.fullmatch(path)
                attributed = None if found is None else _from_match(system, found.groupdict())
                if attributed is not None:  # else another pattern may still name it
                    return attributed
        return None

    def by_host(self, host: str) -> Attribution | None:
        system = self._hosts.get(host.lower())
        return None if system is None else Attribution(system.id, system.service, system.locality)

    def by_token(self, token: str) -> Attribution | None:
        digest = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()
        for system in self.systems:
            # Constant-time comparison: the digest check must not leak how much of a token matched.
            if system.token_sha256 and hmac.compare_digest(system.token_sha256, digest):
                bound = system.locality is not None and not system.national
                return Attribution(system.id, system.service, system.locality, bound)
        return None


def _from_match(system: System, groups: Mapping[str, str | None]) -> Attribution | None:
    service, locality = system.service, system.locality
    try:
        if named := groups.get("service"):
            service = Service(named)
        if groups.get("province") or groups.get("ward"):
            cat = catalogue()
            province = groups.get("province") or None
            ward = groups.get("ward") or None
            locality = cat.locality(province, ward)
    except (ValueError, LocalityError):
        return None  # a path that names no real service/locality is not attributed
    return Attribution(system.id, service, locality)


def path_regex(pattern: str) -> re.Pattern[str]:
    """``**`` any directories, ``*``/``?`` within one segment, ``{province}`` etc. one segment."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif (found := _PLACEHOLDER.match(pattern, i)) is not None:
            out.append(f"(?P<{found.group(1)}>[^/]+?)")
            i = found.end()
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def load_inventory(path: Path) -> Inventory:
    data, locator = load(path)
    return build(data, locator)


def loads_inventory(text: str, name: str = "<inventory>") -> Inventory:
    data, locator = loads(text, name)
    return build(data, locator)


def build(data: Any, locator: Locator, base: tuple[str | int, ...] = ()) -> Inventory:
    """Validate parsed YAML (at ``base`` inside its file) into an :class:`Inventory`."""
    try:
        spec = _InventorySpec.model_validate(data or {})
    except ValidationError as exc:
        raise locator.error(exc, base) from None
    seen: dict[str, int] = {}
    systems = []
    for n, item in enumerate(spec.systems):
        where = (*base, "systems", n)
        if item.id in seen:
            raise CollectorConfigError(
                f"systems.{n}.id: duplicate id {item.id!r}",
                locator.path,
                locator.line((*where, "id")),
            )
        seen[item.id] = n
        systems.append(_resolve(item, locator, where))
    return Inventory(tuple(systems))


def _resolve(item: _SystemSpec, locator: Locator, where: tuple[str | int, ...]) -> System:
    locality = None
    if item.province is not None or item.ward is not None:
        try:
            locality = catalogue().locality(item.province, item.ward)
        except LocalityError as exc:
            key = "ward" if item.ward is not None else "province"
            raise CollectorConfigError(
                f"{key}: {exc}", locator.path, locator.line((*where, key))
            ) from None
    if not (item.paths or item.hosts or item.token_sha256):
        raise CollectorConfigError(
            f"system {item.id!r} has no paths, hosts or token_sha256",
            locator.path,
            locator.line(where),
        )
    return System(
        id=item.id,
        service=item.service,
        locality=locality,
        path_patterns=tuple(path_regex(p) for p in item.paths),
        hosts=frozenset(h.lower() for h in item.hosts),
        token_sha256=item.token_sha256,
        national=item.national,
        paths=item.paths,
        path_lines=tuple(locator.line((*where, "paths", i)) for i in range(len(item.paths))),
        file=locator.path,
        key=".".join(map(str, where)),
    )
