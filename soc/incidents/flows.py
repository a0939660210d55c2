"""Incident changes made by people: check the version, apply a lifecycle step, store, audit.

Each flow reads the incident within the caller's scope (another province's id is "not found"),
refuses a stale ``If-Match`` with 412 before anything is written, stores with the version it read
(so a change racing in between is refused too) and writes one audit record. It must not format
HTTP responses (``soc.incidents.views``) nor bypass ``soc.incidents.service`` to reach the index.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from elasticsearch import Elasticsearch

from soc.auth import audit
from soc.auth.models import User
from soc.errors import RequestError, SocError, StaleVersion
from soc.es.indices import Indices
from soc.incidents import episodes, service
from soc.incidents.models import Incident, TimelineEntry, utcnow
from soc.incidents.silences import Silence

log = logging.getLogger(__name__)

Change = Callable[[Incident], Incident]


@dataclass(frozen=True)
class Caller:
    user: User
    ip: str | None = None


def change(
    es: Elasticsearch,
    indices: Indices,
    incident_id: str,
    *,
    caller: Caller,
    if_match: str | None,
    action: str,
    apply: Change,
    details: dict[str, object] | None = None,
) -> Incident:
    """Apply ``apply`` to the incident; ``if_match`` None skips the ETag check (bulk actions)."""
    current = service.get(es, indices, incident_id, user=caller.user)
    if if_match is not None and if_match != current.etag:
        raise StaleVersion(
            f"incident {incident_id!r} is at version {current.etag}, not {if_match}: someone "
            "else changed it; reload it and try again"
        )
    stored = service.replace(es, indices, apply(current))
    audit.record(
        es,
        indices,
        actor=caller.user,
        action=f"incident.{action}",
        target_type="incident",
        target_id=incident_id,
        provinces=[stored.province_code],
        now=utcnow(),
        ip=caller.ip,
        details=details,
    )
    return stored


@dataclass(frozen=True)
class BulkResult:
    id: str
    ok: bool
    status: int
    detail: str = ""
    etag: str | None = None


def bulk(
    es: Elasticsearch,
    indices: Indices,
    ids: list[str],
    *,
    caller: Caller,
    action: str,
    apply: Change,
    status_of: Callable[[SocError], int],
) -> list[BulkResult]:
    """Apply one change to many incidents; each succeeds or fails on its own, with its reason."""
    results = []
    for incident_id in dict.fromkeys(ids):  # drop repeats, keep order
        try:
            stored = change(
                es, indices, incident_id, caller=caller, if_match=None, action=action, apply=apply
            )
        except SocError as exc:
            results.append(BulkResult(incident_id, False, status_of(exc), str(exc)))
        else:
            results.append(BulkResult(incident_id, True, 200, etag=stored.etag))
    return results


def attach_alert(
    es: Elasticsearch, indices: Indices, alert_id: str, incident_id: str, *, caller: Caller
) -> Incident:
    """Attach an alert to an incident by hand (an analyst's triage), both within scope."""
    from soc.alerts import service as alerts  # the alerts domain reads; incidents orchestrate

    stored = alerts.get(es, indices, alert_id, user=caller.user)
    if stored.incident_id == incident_id:
        return service.get(es, indices, incident_id, user=caller.user)

    place = stored.alert.place

    def add(incident: Incident) -> Incident:
        if alert_id in incident.alert_ids:
            return incident
        # An incident is one place's episode: another province's alert in it would show that
        # province's alert ids to this one's team, and hide the incident from its own.
        if place is None or place.province_code != incident.province_code:
            where = f"province {place.province_code}" if place else "no province"
            raise RequestError(
                f"alert {alert_id!r} ({where}) cannot be attached to incident {incident_id!r} "
                f"(province {incident.province_code}): an alert joins only an incident of its "
                "own province"
            )
        return incident.model_copy(
            update={
                "alert_ids": (*incident.alert_ids, alert_id),
                "alert_count": incident.alert_count + 1,
                "last_seen": max(incident.last_seen, episodes.seen(stored.alert)),
                "updated": utcnow(),
            }
        )

    result = change(
        es,
        indices,
        incident_id,
        caller=caller,
        if_match=None,
        action="attach",
        apply=add,
        details={"alert": alert_id},
    )
    alerts.attach(es, indices, alert_id, incident_id)
    return result


def end_maintenance(
    es: Elasticsearch, indices: Indices, silence: Silence, *, actor: str, now: datetime
) -> Silence | None:
    """End a maintenance window now; the open incidents it covered are emailed as usual again."""
    from soc.incidents import silences

    ended = silences.end_now(es, indices, silence, now)
    for incident in service.under_maintenance(es, indices, silence.id):
        entry = TimelineEntry(at=now, actor=actor, action="maintenance-ended",
                              detail={"silence": silence.id})  # fmt: skip
        changed = incident.model_copy(
            update={"maintenance_until": now, "timeline": (*incident.timeline, entry)}
        )
        try:
            service.replace(es, indices, changed)
        except StaleVersion:
            log.info("incident %s changed meanwhile; its window ends at its own time", incident.id)
    return ended
