"""The simulator's value objects: one generated log record, and one ground-truth label.

A record is what a watched system would log once: an access-log line (:class:`AccessRecord`) or a
JSON application-log line (:class:`AppRecord`); or what soc's health probe saw when it checked an
endpoint (:class:`ProbeRecord`). ``formats`` turns a record into its log line or its
ECS event; this module only holds data and must not render or write anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from soc import timeutil
from soc.localities import Locality
from soc.services import Service
from soc.timeutil import iso


@dataclass(frozen=True, slots=True)
class AccessRecord:
    """One request in an nginx/Apache "combined" access log (with ``$request_time``)."""

    at: datetime
    service: Service
    where: Locality
    ip: str
    user: str | None
    method: str
    path: str
    query: str | None
    status: int
    size: int
    referrer: str | None
    agent: str
    seconds: float

    @property
    def failed(self) -> bool:
        return self.status >= 400


@dataclass(frozen=True, slots=True)
class AppRecord:
    """One JSON application-log line (keys of docs/log-formats.md; ``extra`` per system)."""

    at: datetime
    service: Service
    where: Locality
    host: str
    event: str
    result: str
    level: str = "info"
    error_code: str | None = None
    msg: str | None = None
    user: str | None = None
    ip: str | None = None
    latency_ms: int | None = None
    request_id: str | None = None
    extra: tuple[tuple[str, Any], ...] = field(default=())

    @property
    def failed(self) -> bool:
        return self.result == "failure"

    def get(self, key: str) -> Any:
        return dict(self.extra).get(key)


@dataclass(frozen=True, slots=True)
class ProbeRecord:
    """One health-probe result as the probe collector reports it (docs/log-formats.md "Health
    probes"): not a log line of the watched system, but what soc saw when it checked it."""

    at: datetime
    service: Service
    where: Locality
    target: str
    url: str
    up: bool
    status: int | None
    latency_ms: float
    error: str | None = None

    @property
    def failed(self) -> bool:
        return not self.up


Record = AccessRecord | AppRecord | ProbeRecord


@dataclass(frozen=True, slots=True)
class Label:
    """Ground truth of one injected scenario: what, where, from when to when (UTC)."""

    scenario_id: str
    kind: str
    province_code: str
    province_name: str
    ward_code: str | None
    ward_name: str | None
    service: str
    start: datetime
    end: datetime
    entity: str | None = None
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario_id": self.scenario_id,
            "kind": self.kind,
            "province": {"code": self.province_code, "name": self.province_name},
            "ward": {"code": self.ward_code, "name": self.ward_name} if self.ward_code else None,
            "service": self.service,
            "start": iso(self.start),
            "end": iso(self.end),
            "entity": self.entity,
            "description": self.description,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Label:
        ward = body.get("ward") or {}
        return cls(
            scenario_id=str(body["scenario_id"]),
            kind=str(body["kind"]),
            province_code=str(body["province"]["code"]),
            province_name=str(body["province"]["name"]),
            ward_code=ward.get("code"),
            ward_name=ward.get("name"),
            service=str(body["service"]),
            start=timeutil.parse(str(body["start"])),
            end=timeutil.parse(str(body["end"])),
            entity=body.get("entity"),
            description=str(body.get("description") or ""),
        )
