"""Read and triage alerts: the reading side of ``<prefix>-alerts``.

Detectors create alerts (see ``soc.alerts.models``); this module only reads them and changes their
triage fields (``alert.status``, ``incident.id``, ``triage.*``) with partial updates, so a detector
re-writing the same deterministic id never loses a verdict. Reads take the caller's province scope:
another province's alert is "not found". It must not group alerts into incidents
(``soc.incidents.grouping``) nor know about HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError

from soc.alerts.models import Alert, AlertStatus
from soc.auth.models import User
from soc.errors import NotFound
from soc.es.indices import Indices


@dataclass(frozen=True)
class AlertFilter:
    province: str | None = None
    ward: str | None = None
    service: str | None = None
    severity: str | None = None
    status: str | None = None
    #: Any of these statuses (e.g. new and attached: not yet judged by an analyst).
    statuses: tuple[str, ...] = ()
    rule_id: str | None = None
    incident_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    page: int = 1
    size: int = 50


@dataclass(frozen=True)
class StoredAlert:
    """An alert as read back: the detector's contract plus its triage state."""

    alert: Alert
    status: AlertStatus
    incident_id: str | None
    triage: dict[str, Any]


def from_doc(src: dict[str, Any]) -> StoredAlert:
    """Rebuild the :class:`Alert` a detector wrote from its document."""
    a, rule, loc = src["alert"], src["rule"], src.get("locality")
    place = None
    if loc:
        ward = loc.get("ward") or {}
        place = {
            "province_code": loc["province"]["code"],
            "province_name": loc["province"]["name"],
            "ward_code": ward.get("code"),
            "ward_name": ward.get("name"),
        }
    alert = Alert.model_validate(
        {
            "detector": src["detector"],
            "rule": {k: v for k, v in rule.items() if v is not None},
            "severity": a["severity"],
            "title": a["title"],
            "summary": a.get("summary", ""),
            "window": src["window"],
            "place": place,
            "service": (src.get("service") or {}).get("name"),
            "entity": src.get("entity"),
            "group": src.get("group") or {},
            "count": a.get("count", 0),
            "score": a.get("score"),
            "explanation": a.get("explanation") or {},
            "event_ids": tuple((src.get("evidence") or {}).get("event_ids") or ()),
            "index_pattern": (src.get("evidence") or {}).get("index_pattern"),
            "created": src["@timestamp"],
        }
    )
    return StoredAlert(
        alert=alert,
        status=AlertStatus(a.get("status", AlertStatus.NEW.value)),
        incident_id=(src.get("incident") or {}).get("id"),
        triage=src.get("triage") or {},
    )


def get(es: Elasticsearch, indices: Indices, alert_id: str, *, user: User | None) -> StoredAlert:
    try:
        found = es.get(index=indices.alerts, id=alert_id)
    except NotFoundError:
        raise NotFound(f"no alert {alert_id!r}") from None
    stored = from_doc(dict(found["_source"]))
    place = stored.alert.place
    if user is not None and not user.can_see(place.province_code if place else None):
        raise NotFound(f"no alert {alert_id!r}")
    return stored


def search(
    es: Elasticsearch, indices: Indices, flt: AlertFilter, *, user: User
) -> tuple[list[StoredAlert], int]:
    clauses: list[dict[str, Any]] = []
    scope = user.province_scope()
    if scope is not None:
        clauses.append({"terms": {"locality.province.code": scope}})
    exact = {
        "locality.province.code": flt.province,
        "locality.ward.code": flt.ward,
        "service.name": flt.service,
        "alert.severity": flt.severity,
        "alert.status": flt.status,
        "rule.id": flt.rule_id,
        "incident.id": flt.incident_id,
    }
    clauses.extend({"term": {field: value}} for field, value in exact.items() if value)
    if flt.statuses:
        clauses.append({"terms": {"alert.status": list(flt.statuses)}})
    if flt.since or flt.until:
        bounds = {"gte": flt.since.isoformat()} if flt.since else {}
        if flt.until:
            bounds["lt"] = flt.until.isoformat()
        clauses.append({"range": {"@timestamp": bounds}})
    found = es.search(
        index=indices.alerts,
        query={"bool": {"filter": clauses}},
        sort=[{"@timestamp": "desc"}, {"alert.id": "asc"}],
        from_=(flt.page - 1) * flt.size,
        size=flt.size,
        track_total_hits=True,
    )
    items = [from_doc(dict(hit["_source"])) for hit in found["hits"]["hits"]]
    return items, int(found["hits"]["total"]["value"])


def ungrouped(es: Elasticsearch, indices: Indices, *, limit: int = 500) -> list[StoredAlert]:
    """Alerts not yet in an incident and not dismissed, oldest first: the grouping's input."""
    es.indices.refresh(index=indices.alerts)
    found = es.search(
        index=indices.alerts,
        query={
            "bool": {
                "must_not": [
                    {"exists": {"field": "incident.id"}},
                    {"term": {"alert.status": AlertStatus.FALSE_POSITIVE.value}},
                ]
            }
        },
        sort=[{"@timestamp": "asc"}, {"alert.id": "asc"}],
        size=limit,
    )
    return [from_doc(dict(hit["_source"])) for hit in found["hits"]["hits"]]


def attach(es: Elasticsearch, indices: Indices, alert_id: str, incident_id: str) -> None:
    """Record that the alert belongs to an incident (idempotent)."""
    es.update(
        index=indices.alerts,
        id=alert_id,
        doc={"alert": {"status": AlertStatus.ATTACHED.value}, "incident": {"id": incident_id}},
    )


def triage(
    es: Elasticsearch,
    indices: Indices,
    alert_id: str,
    *,
    verdict: AlertStatus,
    actor: str,
    now: datetime,
) -> None:
    """Record an analyst's verdict on an alert (acknowledged or false positive)."""
    es.update(
        index=indices.alerts,
        id=alert_id,
        doc={
            "alert": {"status": verdict.value},
            "triage": {"by": actor, "at": now.isoformat(), "verdict": verdict.value},
        },
    )


@dataclass(frozen=True)
class RuleStats:
    """How one rule's alerts fared: raised recently, and the analysts' verdicts so far."""

    recent: int = 0
    acknowledged: int = 0
    false_positive: int = 0

    @property
    def false_positive_rate(self) -> float | None:
        judged = self.acknowledged + self.false_positive
        return self.false_positive / judged if judged else None


def stats_by_rule(es: Elasticsearch, indices: Indices, *, since: datetime) -> dict[str, RuleStats]:
    """Per rule id: alerts created since ``since`` and all-time verdicts (for the rules page)."""
    verdicts = [AlertStatus.ACKNOWLEDGED.value, AlertStatus.FALSE_POSITIVE.value]
    found = es.search(
        index=indices.alerts,
        size=0,
        aggs={
            "rule": {
                "terms": {"field": "rule.id", "size": 1000},
                "aggs": {
                    "recent": {"filter": {"range": {"@timestamp": {"gte": since.isoformat()}}}},
                    "verdict": {"terms": {"field": "triage.verdict", "include": verdicts}},
                },
            }
        },
    )
    out: dict[str, RuleStats] = {}
    for bucket in found["aggregations"]["rule"]["buckets"]:
        judged = {b["key"]: int(b["doc_count"]) for b in bucket["verdict"]["buckets"]}
        out[bucket["key"]] = RuleStats(
            recent=int(bucket["recent"]["doc_count"]),
            acknowledged=judged.get(AlertStatus.ACKNOWLEDGED.value, 0),
            false_positive=judged.get(AlertStatus.FALSE_POSITIVE.value, 0),
        )
    return out
