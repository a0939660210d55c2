"""The incident as stored in ``<prefix>-incidents`` and the lifecycle it follows.

An incident is one *episode* of one cause (service x failure class x locality x entity, see
``soc.incidents.cause``), whichever detector saw it. Its lifecycle is a fixed graph
(:data:`TRANSITIONS`); every change appends a :class:`TimelineEntry` saying who, when and what.
This module holds shapes and rules only: it must not talk to Elasticsearch (that is
``soc.incidents.service``) nor know about HTTP (``soc.incidents.views``).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic_core import to_jsonable_python

from soc.alerts.models import Severity


class IncidentStatus(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    INVESTIGATING = "investigating"
    RESOLVED = "resolved"
    FALSE_POSITIVE = "false_positive"

    @property
    def is_open(self) -> bool:
        return self in OPEN_STATUSES


OPEN_STATUSES = frozenset(
    {IncidentStatus.NEW, IncidentStatus.ACKNOWLEDGED, IncidentStatus.INVESTIGATING}
)

#: Allowed lifecycle steps. Closing is allowed from every open state because an analyst may see at
#: once that an incident is noise or already over; a closed incident only comes back by reopening
#: (an analyst's decision, or a new alert within the reopen window), which restarts it as ``new``.
TRANSITIONS: dict[IncidentStatus, frozenset[IncidentStatus]] = {
    IncidentStatus.NEW: frozenset(
        {
            IncidentStatus.ACKNOWLEDGED,
            IncidentStatus.INVESTIGATING,
            IncidentStatus.RESOLVED,
            IncidentStatus.FALSE_POSITIVE,
        }
    ),
    IncidentStatus.ACKNOWLEDGED: frozenset(
        {IncidentStatus.INVESTIGATING, IncidentStatus.RESOLVED, IncidentStatus.FALSE_POSITIVE}
    ),
    IncidentStatus.INVESTIGATING: frozenset(
        {IncidentStatus.RESOLVED, IncidentStatus.FALSE_POSITIVE}
    ),
    IncidentStatus.RESOLVED: frozenset({IncidentStatus.NEW}),
    IncidentStatus.FALSE_POSITIVE: frozenset({IncidentStatus.NEW}),
}


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TimelineEntry(Frozen):
    at: AwareDatetime
    actor: str
    action: str
    detail: dict[str, Any] = Field(default_factory=dict)


class Comment(Frozen):
    id: str
    at: AwareDatetime
    author: str
    text: str


class IncidentSummary(Frozen):
    """An incident without its history: what a list shows (``GET /incidents`` items).

    :class:`Incident` adds the alert ids, the timeline and the comments, which grow with the
    incident's life; a list of 50 would otherwise carry and convert all of them.
    """

    id: str
    title: str
    summary: str = ""
    status: IncidentStatus = IncidentStatus.NEW
    severity: Severity
    group_key: str
    cause_key: str
    place_key: str = ""
    failure_class: str = ""
    parent_id: str | None = None
    is_parent: bool = False
    detector: str
    rule_id: str
    rule_name: str
    province_code: str
    province_name: str
    ward_code: str | None = None
    ward_name: str | None = None
    ward_codes: tuple[str, ...] = ()
    service: str | None = None
    entity_type: str | None = None
    entity_value: str | None = None
    assignee: str | None = None
    alert_count: int = 0
    #: Matching events counted by the detectors over the incident's alerts (``alert.count``).
    event_count: int = 0
    detectors: tuple[str, ...] = ()
    #: Longest detection window among its alerts: how long silence must last before it counts.
    window_seconds: float = 0.0
    #: 1 for the first episode of a cause; the next episode after a recovery is a new incident
    #: with ``episode`` + 1 and ``previous_id`` naming the one before.
    episode: int = 1
    previous_id: str | None = None
    recovered: AwareDatetime | None = None
    #: A maintenance window (``soc.incidents.silences``) covers it: nobody is emailed until then.
    maintenance_id: str | None = None
    maintenance_until: AwareDatetime | None = None
    first_seen: AwareDatetime
    last_seen: AwareDatetime
    created: AwareDatetime
    updated: AwareDatetime
    acknowledged: AwareDatetime | None = None
    resolved: AwareDatetime | None = None
    reopened: int = 0
    tta_seconds: float | None = None
    ttr_seconds: float | None = None
    ack_due: AwareDatetime
    resolve_due: AwareDatetime
    #: (seq_no, primary_term): the ETag, absent before it is stored.
    version: tuple[int, int] | None = None


class Incident(IncidentSummary):
    """One incident with its history (alert ids, timeline, comments)."""

    alert_ids: tuple[str, ...] = ()
    timeline: tuple[TimelineEntry, ...] = ()
    comments: tuple[Comment, ...] = ()

    @property
    def etag(self) -> str:
        seq_no, term = self.version or (0, 0)
        return f'"{seq_no}-{term}"'

    def to_doc(self) -> dict[str, Any]:
        """The Elasticsearch document (see ``soc/es/mappings/incidents.json``)."""
        body = self.model_dump(mode="json", exclude={"version"})
        incident = {k: body[k] for k in _INCIDENT_FIELDS}
        locality: dict[str, Any] = {
            "province": {"code": self.province_code, "name": self.province_name}
        }
        if self.ward_code is not None:
            locality["ward"] = {"code": self.ward_code, "name": self.ward_name}
        doc: dict[str, Any] = {
            "@timestamp": body["created"],
            "incident": incident,
            "detector": self.detector,
            "rule": {"id": self.rule_id, "name": self.rule_name},
            "locality": locality,
        }
        if self.service is not None:
            doc["service"] = {"name": self.service}
        if self.entity_type is not None:
            doc["entity"] = {"type": self.entity_type, "value": self.entity_value}
        return doc

    @classmethod
    def from_hit(cls, hit: dict[str, Any]) -> Incident:
        """Rebuild from a search hit or a get response (with ``_seq_no``, ``_primary_term``)."""
        src = hit["_source"]
        values = dict(src["incident"])
        values.update(_flat_fields(src))
        if "_seq_no" in hit:
            values["version"] = (hit["_seq_no"], hit["_primary_term"])
        return cls.model_validate(values)


_INCIDENT_FIELDS = (
    "id",
    "title",
    "summary",
    "status",
    "severity",
    "group_key",
    "cause_key",
    "place_key",
    "failure_class",
    "parent_id",
    "is_parent",
    "ward_codes",
    "assignee",
    "alert_ids",
    "alert_count",
    "event_count",
    "detectors",
    "window_seconds",
    "episode",
    "previous_id",
    "recovered",
    "maintenance_id",
    "maintenance_until",
    "first_seen",
    "last_seen",
    "created",
    "updated",
    "acknowledged",
    "resolved",
    "reopened",
    "tta_seconds",
    "ttr_seconds",
    "ack_due",
    "resolve_due",
    "timeline",
    "comments",
)


#: Stored fields a list leaves out (``_source`` excludes): the history of :class:`Incident`.
DETAIL_FIELDS = ("incident.alert_ids", "incident.timeline", "incident.comments")
_SUMMARY_DEFAULTS = {
    name: to_jsonable_python(field.default)
    for name, field in IncidentSummary.model_fields.items()
    if not field.is_required()
}


def summary_row(hit: dict[str, Any]) -> dict[str, Any]:
    """The JSON of an :class:`IncidentSummary` straight from a search hit (with its version).

    The document was written by :meth:`Incident.to_doc` (validated, JSON mode), so its values are
    already what the model would answer; this only flattens it and fills fields an older document
    lacks with their defaults. It saves a model validation and dump per list item.
    """
    src = hit["_source"]
    row = {**_SUMMARY_DEFAULTS, **src["incident"]}
    for name in row.keys() - _SUMMARY_KEYS:  # history, or a field no longer in the model
        del row[name]
    row.update(_flat_fields(src), version=[hit["_seq_no"], hit["_primary_term"]])
    return row


def _flat_fields(src: dict[str, Any]) -> dict[str, Any]:
    """The incident's fields stored outside ``incident`` (where :meth:`Incident.to_doc` puts
    them), flattened back to the model's names."""
    locality = src.get("locality", {})
    ward = locality.get("ward") or {}
    entity = src.get("entity") or {}
    return {
        "detector": src["detector"],
        "rule_id": src["rule"]["id"],
        "rule_name": src["rule"]["name"],
        "province_code": locality["province"]["code"],
        "province_name": locality["province"]["name"],
        "ward_code": ward.get("code"),
        "ward_name": ward.get("name"),
        "service": (src.get("service") or {}).get("name"),
        "entity_type": entity.get("type"),
        "entity_value": entity.get("value"),
    }


_SUMMARY_KEYS = frozenset(IncidentSummary.model_fields)


def incident_id(key: str, first_alert_id: str) -> str:
    """Deterministic id, so re-grouping the same first alert after a crash never doubles it."""
    return _digest([key, first_alert_id])


def _digest(parts: list[str]) -> str:
    return hashlib.blake2b(orjson.dumps(parts), digest_size=12).hexdigest()


def utcnow() -> datetime:
    return datetime.now(UTC)
