"""The shape of an alert as written to ``<prefix>-alerts``: the contract between the detectors
(Sigma, correlation, anomaly), which write alerts, and incidents/notify/dashboards, which read them.

An alert is immutable once written except for its triage fields (status, incident, triage), which
belong to ``soc.alerts.service``. Its ``_id`` is :func:`alert_id`: the same detector, rule, window
and group always give the same id, so a re-evaluated window never doubles an alert.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from soc.timeutil import Window as Window  # an alert's window; importers use this name
from soc.timeutil import iso


class Detector(StrEnum):
    SIGMA = "sigma"
    CORRELATION = "correlation"
    ANOMALY = "anomaly"


class Severity(StrEnum):
    """Sigma's levels, used for alerts and incidents alike."""

    INFORMATIONAL = "informational"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class AlertStatus(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    FALSE_POSITIVE = "false_positive"
    ATTACHED = "attached"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RuleRef(Frozen):
    id: str
    name: str
    level: Severity
    tags: tuple[str, ...] = ()
    version: str | None = None


class Place(Frozen):
    """``locality.*`` of an alert: the province always, the ward when the finding has one."""

    province_code: str
    province_name: str
    ward_code: str | None = None
    ward_name: str | None = None


class Entity(Frozen):
    """What the alert is about beyond the locality: a user, an IP, a service, a carrier ..."""

    type: str
    value: str


class Alert(Frozen):
    detector: Detector
    rule: RuleRef
    severity: Severity
    title: str = Field(max_length=1024)
    summary: str = ""
    window: Window
    place: Place | None = None
    service: str | None = None
    entity: Entity | None = None
    group: dict[str, str] = Field(default_factory=dict)
    count: int = Field(default=0, ge=0)
    score: float | None = Field(default=None, ge=0.0, le=1.0)
    explanation: dict[str, Any] = Field(default_factory=dict)
    event_ids: tuple[str, ...] = ()
    index_pattern: str | None = None
    created: AwareDatetime

    @property
    def id(self) -> str:
        return alert_id(self.detector, self.rule.id, self.window, self.group)

    def to_doc(self) -> dict[str, Any]:
        """The Elasticsearch document (see ``soc/es/mappings/alerts.json``)."""
        doc: dict[str, Any] = {
            "@timestamp": iso(self.created),
            "alert": {
                "id": self.id,
                "status": AlertStatus.NEW.value,
                "severity": self.severity.value,
                "count": self.count,
                "title": self.title,
                "summary": self.summary,
                "explanation": self.explanation,
            },
            "detector": self.detector.value,
            "rule": {
                "id": self.rule.id,
                "name": self.rule.name,
                "level": self.rule.level.value,
                "tags": list(self.rule.tags),
                "version": self.rule.version,
            },
            "window": {"start": iso(self.window.start), "end": iso(self.window.end)},
            "group": self.group,
            "evidence": {"event_ids": list(self.event_ids), "index_pattern": self.index_pattern},
        }
        if self.score is not None:
            doc["alert"]["score"] = self.score
        if self.place is not None:
            locality: dict[str, Any] = {
                "province": {"code": self.place.province_code, "name": self.place.province_name}
            }
            if self.place.ward_code is not None:
                locality["ward"] = {"code": self.place.ward_code, "name": self.place.ward_name}
            doc["locality"] = locality
        if self.service is not None:
            doc["service"] = {"name": self.service}
        if self.entity is not None:
            doc["entity"] = {"type": self.entity.type, "value": self.entity.value}
        return doc


def alert_id(detector: str, rule_id: str, window: Window, group: dict[str, str]) -> str:
    """Deterministic id: same detector, rule, window and group give the same alert."""
    key = orjson.dumps(
        [str(detector), rule_id, iso(window.start), iso(window.end), group],
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.blake2b(key, digest_size=16).hexdigest()
