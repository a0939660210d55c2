"""Group alerts into incidents: the flow from ``<prefix>-alerts`` to ``<prefix>-incidents``.

The rules, in the order they are tried for one alert (times are the alert's own ``created``, so
re-running the grouping over the same alerts gives the same incidents):

1. **Parent**: an open parent incident of the alert's cause (detector, rule, province, service)
   seen within ``incident_group_window`` absorbs it, adding its commune to ``ward_codes``.
2. **Same key**: the latest incident of the alert's key (detector/rule, province, commune, service,
   entity) absorbs it if open and seen within the window; if it was *resolved* less than
   ``incident_reopen_window`` ago it is reopened (back to ``new``) and absorbs it. A
   ``false_positive`` incident is never reopened by an alert: the analyst said that key is noise
   for that episode, so a later alert opens a fresh incident instead.
3. Otherwise a new incident opens. If that makes ``incident_parent_threshold`` communes of one
   province with an open incident of the same cause, a parent incident opens over them: the
   children get its ``parent_id``, and later communes go straight to the parent (rule 1), so a
   province-wide outage is one incident with its communes attached, not hundreds.

The latest incident per key and the parent per cause are found through pointer documents in
``<prefix>-state`` read with a real-time GET, so no refresh is needed between two alerts. Each alert
is attached to its incident afterwards; an alert already listed in ``alert_ids`` is not counted
twice, so a crash between the two writes loses and doubles nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from elasticsearch import Elasticsearch, NotFoundError

from soc.alerts import service as alerts
from soc.alerts.models import Alert, Severity
from soc.config import Settings
from soc.errors import NotFound, StaleVersion
from soc.es.indices import Indices
from soc.incidents import lifecycle
from soc.incidents import service as incidents
from soc.incidents.models import (
    Incident,
    IncidentStatus,
    TimelineEntry,
    cause_key,
    group_key,
    incident_id,
)

log = logging.getLogger(__name__)

SYSTEM = "soc-grouping"
_ATTEMPTS = 3


def group_pending(
    es: Elasticsearch, indices: Indices, settings: Settings, *, limit: int = 500
) -> int:
    """Group every alert not yet in an incident; returns how many were grouped."""
    pending = alerts.ungrouped(es, indices, limit=limit)
    for stored in pending:
        incident = group_alert(es, indices, settings, stored.alert)
        alerts.attach(es, indices, stored.alert.id, incident.id)
    if pending:
        es.indices.refresh(index=f"{indices.incidents},{indices.alerts}")
    return len(pending)


def group_alert(es: Elasticsearch, indices: Indices, settings: Settings, alert: Alert) -> Incident:
    """The incident ``alert`` belongs to, created, reopened or updated as the rules above say."""
    for attempt in range(_ATTEMPTS):
        try:
            return _group_once(es, indices, settings, alert)
        except StaleVersion:
            # An analyst changed the incident meanwhile: read it again and re-apply the alert.
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _group_once(es: Elasticsearch, indices: Indices, settings: Settings, alert: Alert) -> Incident:
    window = timedelta(seconds=settings.incident_group_window)
    at = alert.created
    cause = cause_key(alert)
    ward = alert.place.ward_code if alert.place else None
    if ward is not None:
        parent = _pointed(es, indices, "parent", cause)
        if parent and parent.status.is_open and at - parent.last_seen <= window:
            return _absorb(es, indices, parent, alert)
    key = group_key(alert)
    current = _pointed(es, indices, "key", key)
    if current is not None:
        if alert.id in current.alert_ids:
            return current
        if current.status.is_open and at - current.last_seen <= window:
            return _absorb(es, indices, current, alert)
        reopen_by = timedelta(seconds=settings.incident_reopen_window)
        if (
            current.status is IncidentStatus.RESOLVED
            and current.resolved is not None
            and at - current.resolved <= reopen_by
        ):
            reopened = lifecycle.reopen(
                current, actor=SYSTEM, now=at, reason=f"alert {alert.id} fired again"
            )
            return _absorb(es, indices, reopened, alert)
    created = _open(es, indices, settings, alert, key, cause)
    _point(es, indices, "key", key, created.id, at)
    if ward is not None:
        _maybe_parent(es, indices, settings, alert, cause)
    return created


def _open(
    es: Elasticsearch, indices: Indices, settings: Settings, alert: Alert, key: str, cause: str
) -> Incident:
    at = alert.created
    place = alert.place
    incident = Incident(
        id=incident_id(key, alert.id),
        title=alert.title,
        summary=alert.summary,
        severity=alert.severity,
        group_key=key,
        cause_key=cause,
        detector=alert.detector.value,
        rule_id=alert.rule.id,
        rule_name=alert.rule.name,
        province_code=place.province_code if place else "",
        province_name=place.province_name if place else "",
        ward_code=place.ward_code if place else None,
        ward_name=place.ward_name if place else None,
        service=alert.service,
        entity_type=alert.entity.type if alert.entity else None,
        entity_value=alert.entity.value if alert.entity else None,
        alert_ids=(alert.id,),
        alert_count=1,
        first_seen=at,
        last_seen=at,
        created=at,
        updated=at,
        ack_due=at + timedelta(seconds=settings.notify_ack_sla),
        resolve_due=at + timedelta(seconds=settings.incident_resolve_sla),
        timeline=(TimelineEntry(at=at, actor=SYSTEM, action="open", detail={"alert": alert.id}),),
    )
    stored = incidents.create(es, indices, incident)
    if stored is None:  # created by an earlier run that stopped before attaching the alert
        return incidents.get(es, indices, incident.id, user=None)
    log.info(
        "incident %s opened for rule %s in %s",
        incident.id,
        alert.rule.id,
        incident.ward_code or incident.province_code,
    )
    return stored


def _absorb(es: Elasticsearch, indices: Indices, incident: Incident, alert: Alert) -> Incident:
    if alert.id in incident.alert_ids:
        return incident
    changes: dict[str, object] = {
        "alert_ids": (*incident.alert_ids, alert.id),
        "alert_count": incident.alert_count + 1,
        "last_seen": max(incident.last_seen, alert.created),
        "updated": max(incident.updated, alert.created),
    }
    ward = alert.place.ward_code if alert.place else None
    if incident.is_parent and ward is not None and ward not in incident.ward_codes:
        changes["ward_codes"] = tuple(sorted((*incident.ward_codes, ward)))
        changes["timeline"] = (
            *incident.timeline,
            TimelineEntry(
                at=alert.created,
                actor=SYSTEM,
                action="commune",
                detail={"ward": ward, "alert": alert.id},
            ),
        )
    if alert.severity.rank > incident.severity.rank:
        # A worse alert raises the incident; a lower one never lowers an analyst's judgement.
        changes["severity"] = alert.severity
    return incidents.replace(es, indices, incident.model_copy(update=changes))


def _maybe_parent(
    es: Elasticsearch, indices: Indices, settings: Settings, alert: Alert, cause: str
) -> None:
    since = alert.created - timedelta(seconds=settings.incident_group_window)
    children = incidents.open_children(es, indices, cause, since)
    wards = sorted({c.ward_code for c in children if c.ward_code})
    if len(wards) < settings.incident_parent_threshold:
        return
    first = min(children, key=lambda c: (c.created, c.id))
    at = alert.created
    parent = first.model_copy(
        update={
            "id": incident_id(cause, f"parent:{first.id}"),
            "is_parent": True,
            "parent_id": None,
            "group_key": cause,
            "ward_code": None,
            "ward_name": None,
            "ward_codes": tuple(wards),
            "title": f"{alert.rule.name}: {len(wards)} communes of {first.province_name}",
            "severity": max((c.severity for c in children), key=lambda s: Severity(s).rank),
            "alert_ids": tuple(a for c in children for a in c.alert_ids),
            "alert_count": sum(c.alert_count for c in children),
            "entity_type": None,
            "entity_value": None,
            "status": IncidentStatus.NEW,
            "assignee": None,
            "comments": (),
            "last_seen": max(c.last_seen for c in children),
            "updated": at,
            "version": None,
            "first_seen": min(c.first_seen for c in children),
            "created": at,
            "acknowledged": None,
            "resolved": None,
            "tta_seconds": None,
            "ttr_seconds": None,
            "reopened": 0,
            "timeline": (
                TimelineEntry(
                    at=at,
                    actor=SYSTEM,
                    action="open-parent",
                    detail={"children": [c.id for c in children]},
                ),
            ),
        }
    )
    stored = incidents.create(es, indices, parent) or incidents.get(
        es, indices, parent.id, user=None
    )
    _point(es, indices, "parent", cause, stored.id, at)
    for child in children:
        if child.parent_id is None:
            entry = TimelineEntry(
                at=at, actor=SYSTEM, action="parent", detail={"parent": stored.id}
            )
            updated = child.model_copy(
                update={"parent_id": stored.id, "timeline": (*child.timeline, entry)}
            )
            try:
                incidents.replace(es, indices, updated)
            except StaleVersion:
                log.info("child %s changed meanwhile; it keeps no parent link", child.id)
    log.info("parent incident %s opened over %d communes", stored.id, len(wards))


def _pointer_id(kind: str, key: str) -> str:
    return f"incident-{kind}:{key}"


def _pointed(es: Elasticsearch, indices: Indices, kind: str, key: str) -> Incident | None:
    try:
        found = es.get(index=indices.state, id=_pointer_id(kind, key))
    except NotFoundError:
        return None
    try:
        return incidents.get(es, indices, found["_source"]["data"]["incident_id"], user=None)
    except NotFound:
        return None


def _point(
    es: Elasticsearch, indices: Indices, kind: str, key: str, target: str, at: datetime
) -> None:
    es.index(
        index=indices.state,
        id=_pointer_id(kind, key),
        document={
            "kind": f"incident-{kind}",
            "key": key,
            "updated": at.isoformat(),
            "data": {"incident_id": target},
        },
    )
