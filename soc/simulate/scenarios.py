"""Scenarios: declared in YAML, validated into frozen objects, resolved to a place and a time.

A scenario file holds ``scenarios:``, a list of entries such as::

    - id: vneid-outage-hanoi
      kind: vneid_outage
      province: Hà Nội
      start: "+1d09h"        # relative to the run's start, or ISO 8601 with an offset
      duration: 2h

Every error names the file and the key (``scenarios/demo.yaml: scenarios[2].province: unknown
province 'Ha Noii'``). What a scenario does to the traffic lives in ``effects``; this module only
reads, checks and resolves, and must not touch records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from soc.errors import LocalityError, ScenarioError
from soc.localities import Catalogue, Locality
from soc.services import Service
from soc.simulate import people
from soc.simulate.models import Label

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


class Kind(StrEnum):
    VNEID_OUTAGE = "vneid_outage"
    VNEID_ERROR_STORM = "vneid_error_storm"
    OTP_CARRIER_FAILURE = "otp_carrier_failure"
    OTP_BRUTE_FORCE = "otp_brute_force"
    CREDENTIAL_STUFFING = "credential_stuffing"
    OSS_5XX_STORM = "oss_5xx_storm"
    SYNC_STOPPED = "sync_stopped"
    COMMUNE_SILENT = "commune_silent"
    SLOW_DEGRADATION = "slow_degradation"
    WEB_ATTACK = "web_attack"


#: The service each kind is about (slow degradation names its own).
KIND_SERVICE: dict[Kind, Service | None] = {
    Kind.VNEID_OUTAGE: Service.VNEID,
    Kind.VNEID_ERROR_STORM: Service.VNEID,
    Kind.OTP_CARRIER_FAILURE: Service.OTP,
    Kind.OTP_BRUTE_FORCE: Service.OTP,
    Kind.CREDENTIAL_STUFFING: Service.VNEID,
    Kind.OSS_5XX_STORM: Service.ONE_STOP_SHOP,
    Kind.SYNC_STOPPED: Service.PORTAL_SYNC,
    Kind.COMMUNE_SILENT: None,
    Kind.SLOW_DEGRADATION: None,
    Kind.WEB_ATTACK: Service.WEB_PORTAL,
}
_NEEDS_WARD = {Kind.COMMUNE_SILENT, Kind.WEB_ATTACK}


def parse_duration(text: str) -> timedelta:
    """``"2h"``, ``"1d09h30m"``, ``"45s"`` as a timedelta; ValueError otherwise."""
    match = _DURATION.match(text.strip())
    if not match or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration like 90m, 2h or 1d06h")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


class ScenarioSpec(BaseModel):
    """One entry of a scenario file, as written."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,80}$")
    kind: Kind
    province: str
    ward: str | None = None
    wards: tuple[str, ...] = ()
    ward_count: int = Field(default=0, ge=0, le=500)
    service: Service | None = None
    start: str
    duration: str
    carrier: str | None = None
    account: str | None = None
    error_rate: float = Field(default=0.6, gt=0, le=1)
    rate_per_minute: float = Field(default=20.0, gt=0, le=10_000)
    max_factor: float = Field(default=25.0, gt=1, le=1000)
    #: ``sync_stopped`` only: ``communes`` (the job cannot reach the wards named) or ``job`` (the
    #: province's sync job itself stops: no run record, no push at all).
    scope: Literal["communes", "job"] = "communes"
    description: str = ""

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str) -> str:
        if parse_duration(value) <= timedelta(0):
            raise ValueError("must be longer than zero")
        return value

    @field_validator("start")
    @classmethod
    def _start(cls, value: str) -> str:
        if value.startswith("+"):
            parse_duration(value[1:])
        else:
            when = datetime.fromisoformat(value)
            if when.tzinfo is None:
                raise ValueError("needs an offset, e.g. 2026-11-20T09:00:00+07:00")
        return value

    @field_validator("carrier")
    @classmethod
    def _carrier(cls, value: str | None) -> str | None:
        if value is not None and value not in people.CARRIERS:
            raise ValueError(f"must be one of {', '.join(people.CARRIERS)}")
        return value


class ScenarioFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    scenarios: tuple[ScenarioSpec, ...]


@dataclass(frozen=True)
class Scenario:
    """A scenario resolved to real localities and an absolute UTC window."""

    spec: ScenarioSpec
    where: Locality
    wards: tuple[Locality, ...]
    service: Service | None
    start: datetime
    end: datetime

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def kind(self) -> Kind:
        return self.spec.kind

    def active(self, start: datetime, end: datetime) -> bool:
        """True when the scenario overlaps ``[start, end)``."""
        return self.start < end and start < self.end

    def entity(self) -> str | None:
        if self.kind is Kind.OTP_CARRIER_FAILURE:
            return f"carrier:{self.spec.carrier}"
        if self.kind is Kind.OTP_BRUTE_FORCE:
            return f"user:{self.account}"
        return None

    @property
    def account(self) -> str:
        ward = self.where.ward
        return self.spec.account or f"cd{ward.code if ward else self.where.province.code}99999"

    def labels(self) -> list[Label]:
        """Ground truth: one label per affected commune (or one for the province)."""
        places = self.wards or (self.where,)
        return [
            Label(
                scenario_id=self.id, kind=self.kind.value,
                province_code=p.province.code, province_name=p.province.name,
                ward_code=p.ward.code if p.ward else None,
                ward_name=p.ward.name if p.ward else None,
                service=self.service.value if self.service else "*",
                start=self.start, end=self.end, entity=self.entity(),
                description=self.spec.description,
            )
            for p in places
        ]  # fmt: skip


def load(path: Path, cat: Catalogue, origin: datetime) -> list[Scenario]:
    """Read, validate and resolve a scenario file; relative starts count from ``origin``."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ScenarioError(f"{path}{where}: not valid YAML: {exc}") from None
    try:
        parsed = ScenarioFile.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{_loc(err['loc'])}: {err['msg']}" for err in exc.errors(include_url=False)]
        raise ScenarioError(f"{path}: " + "; ".join(problems)) from None
    seen: set[str] = set()
    out = []
    for i, spec in enumerate(parsed.scenarios):
        if spec.id in seen:
            raise ScenarioError(f"{path}: scenarios[{i}].id: duplicate id {spec.id!r}")
        seen.add(spec.id)
        out.append(resolve(spec, cat, origin, where=f"{path}: scenarios[{i}]"))
    return out


def _loc(parts: tuple[Any, ...]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def resolve(spec: ScenarioSpec, cat: Catalogue, origin: datetime, *, where: str) -> Scenario:
    """Turn names into localities and the start into UTC; errors say ``where``."""
    try:
        province = cat.province(spec.province)
    except LocalityError as exc:
        raise ScenarioError(f"{where}.province: {exc}") from None
    ward = None
    if spec.ward is not None:
        try:
            ward = cat.ward(spec.ward, province)
        except LocalityError as exc:
            raise ScenarioError(f"{where}.ward: {exc}") from None
    elif spec.kind in _NEEDS_WARD:
        raise ScenarioError(f"{where}.ward: a {spec.kind.value} scenario needs a ward")
    if spec.scope == "job" and spec.kind is not Kind.SYNC_STOPPED:
        raise ScenarioError(f"{where}.scope: only a sync_stopped scenario takes a scope")
    wards = _sync_wards(spec, cat, province.code, where) if spec.kind is Kind.SYNC_STOPPED else ()
    service = KIND_SERVICE[spec.kind] or spec.service
    if spec.service is not None and service is not spec.service:
        fixed = service.value if service else "every service"
        raise ScenarioError(f"{where}.service: a {spec.kind.value} scenario is about {fixed}; "
                            "only slow_degradation takes a service")  # fmt: skip
    if spec.kind is Kind.SLOW_DEGRADATION and spec.service is None:
        raise ScenarioError(f"{where}.service: a slow_degradation scenario needs a service")
    if spec.kind is Kind.OTP_CARRIER_FAILURE and spec.carrier is None:
        raise ScenarioError(f"{where}.carrier: an otp_carrier_failure scenario needs a carrier")
    if spec.start.startswith("+"):
        start = origin + parse_duration(spec.start[1:])
    else:
        start = datetime.fromisoformat(spec.start)
    start = start.astimezone(UTC)
    return Scenario(spec=spec, where=Locality(province, ward), wards=wards, service=service,
                    start=start, end=start + parse_duration(spec.duration))  # fmt: skip


def _sync_wards(
    spec: ScenarioSpec, cat: Catalogue, province: str, where: str
) -> tuple[Locality, ...]:
    prov = cat.province(province)
    if spec.scope == "job":
        if spec.ward or spec.wards or spec.ward_count:
            raise ScenarioError(f"{where}.scope: a stop of the whole job names no wards")
        return ()  # the whole province: one label for it (Scenario.labels)
    chosen = []
    for i, name in enumerate(spec.wards or ((spec.ward,) if spec.ward else ())):
        try:
            chosen.append(cat.ward(name, prov))
        except LocalityError as exc:
            raise ScenarioError(f"{where}.wards[{i}]: {exc}") from None
    if spec.ward_count:
        # The first wards in catalogue order: stable, so the same file always means the same place.
        rest = [w for w in cat.wards_of(prov) if w not in chosen]
        chosen.extend(rest[: spec.ward_count])
    if not chosen:
        raise ScenarioError(
            f"{where}.wards: a sync_stopped scenario needs wards or ward_count (or scope: job)"
        )
    return tuple(Locality(prov, w) for w in chosen)
