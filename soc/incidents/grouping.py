"""Group alerts into incidents by episode and cause: ``<prefix>-alerts`` → ``<prefix>-incidents``.

An incident is one episode of one cause (``soc.incidents.cause``: service x failure class x
locality x entity), whichever detector saw it. For one alert, in this order (times are when the
alert's evidence ends, ``episodes.seen``, not when it was created: a catch-up run creates hours of
alerts at once; so grouping the same alerts again gives the same incidents):

1. **Parent**: a commune's alert joins the open parent of its cause in the province (while that
   parent's episode lasts), adding the commune to ``ward_codes`` (a notified update).
2. **Current incident of the cause**: the latest incident of the exact cause. An alert that names
   no entity (an anomaly, a plain Sigma rule) instead joins the latest open incident of its service,
   class and place, whatever that one's entity; an alert naming an entity joins an open incident
   of its place that has no entity yet, which takes the entity. So Sigma and anomaly alerts about
   one failure at one place are one incident.
3. **Episode**: if the current incident's episode is over (``soc.incidents.episodes``: quiet, or
   health probe up), it is resolved at its recovery time and a **new incident** opens (episode + 1,
   ``previous_id`` set): a flapping endpoint gives one incident, and one email, per outage. If the
   episode goes on, the alert joins it: an open incident absorbs it; one an analyst *resolved* is
   reopened (and emailed as reopened: the failure never stopped); a *false positive* keeps its
   verdict for the rest of the episode and absorbs it quietly.
4. Otherwise a new incident opens, and, when ``incident_parent_threshold`` communes of one province
   have an open incident of the same cause, a parent over them (``soc.incidents.parents``).

An alert inside a maintenance window (``soc.incidents.silences``) is grouped the same way; its
incident is marked ``maintenance`` until the window ends, and nobody is emailed meanwhile.

A different commune or entity is therefore never absorbed silently: it is its own incident, or a
commune of a parent. Every attached alert and every change is a timeline entry. The current
incident per cause, per place and the parent per province are pointer documents in
``<prefix>-state`` read with a real-time GET (no refresh between two alerts); incident ids are
deterministic and an alert already in ``alert_ids`` is not counted twice, so a crash between writes
loses and doubles nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from elasticsearch import Elasticsearch

from soc.alerts import service as alerts
from soc.alerts.models import Alert
from soc.config import Settings
from soc.errors import StaleVersion
from soc.es.indices import Indices
from soc.incidents import episodes, lifecycle, parents, silences
from soc.incidents import service as incidents
from soc.incidents.cause import Cause, cause_of
from soc.incidents.episodes import SYSTEM, Recovery
from soc.incidents.models import Incident, IncidentStatus, TimelineEntry, incident_id
from soc.incidents.pointers import point, pointed
from soc.incidents.silences import Silence

log = logging.getLogger(__name__)

_ATTEMPTS = 3


def group_pending(
    es: Elasticsearch, indices: Indices, settings: Settings, *, limit: int = 500
) -> int:
    """Group every alert not yet in an incident; returns how many were grouped."""
    pending = alerts.ungrouped(es, indices, limit=limit)
    if not pending:
        return 0
    ordered = sorted(pending, key=lambda s: (episodes.seen(s.alert), s.alert.id))
    # Covering is judged at each alert's creation (the order above is its evidence's).
    windows = silences.current(es, indices, min(s.alert.created for s in ordered))
    for stored in ordered:
        incident = group_alert(es, indices, settings, stored.alert, windows)
        alerts.attach(es, indices, stored.alert.id, incident.id)
    es.indices.refresh(index=f"{indices.incidents},{indices.alerts}")
    return len(pending)


def group_alert(
    es: Elasticsearch,
    indices: Indices,
    settings: Settings,
    alert: Alert,
    windows: list[Silence] | None = None,
) -> Incident:
    """The incident ``alert`` belongs to, created, reopened or updated as the rules above say;
    ``windows`` are the maintenance windows to check (read when not given)."""
    if windows is None:
        windows = silences.current(es, indices, alert.created)
    silence = silences.covering(windows, alert)
    for attempt in range(_ATTEMPTS):
        try:
            return _group_once(es, indices, settings, alert, silence)
        except StaleVersion:
            # An analyst changed the incident meanwhile: read it again and re-apply the alert.
            if attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _group_once(
    es: Elasticsearch, indices: Indices, settings: Settings, alert: Alert, silence: Silence | None
) -> Incident:
    cause = cause_of(alert)
    at = episodes.seen(alert)
    if cause.ward_code is not None:
        parent = pointed(es, indices, "parent", cause.province_key)
        if parent is not None and alert.id in parent.alert_ids:
            return parent
        live = parent is not None and parent.status.is_open
        if parent is not None and live and _ended(es, indices, settings, parent, at) is None:
            return _absorb(es, indices, parent, alert, silence)
    current, adopt = _current(es, indices, settings, cause, at)
    previous: Incident | None = None
    if current is not None:
        if alert.id in current.alert_ids:
            return current
        ended = _ended(es, indices, settings, current, at)
        if ended is None:
            return _same_episode(es, indices, current, alert, cause, adopt=adopt, silence=silence)
        previous = _close_episode(es, indices, current, ended)
    created = _open(es, indices, settings, alert, cause, previous, silence)
    point(es, indices, "cause", cause.key, created.id, at)
    point(es, indices, "place", cause.place_key, created.id, at)
    if cause.ward_code is not None:
        parents.maybe_parent(es, indices, settings, cause, at)
    return created


def _current(
    es: Elasticsearch, indices: Indices, settings: Settings, cause: Cause, at: datetime
) -> tuple[Incident | None, bool]:
    """The incident this cause continues, and whether it is to take the alert's entity."""
    exact = pointed(es, indices, "cause", cause.key)
    if exact is not None and exact.status.is_open:
        return exact, False
    latest = pointed(es, indices, "place", cause.place_key)
    if latest is None or not latest.status.is_open:
        return exact, False
    if cause.entity is None:
        return latest, False  # names no entity: evidence for whatever is wrong here now
    if latest.entity_value is None and _ended(es, indices, settings, latest, at) is None:
        return latest, True  # the entity-less incident of this place learns who is involved
    return exact, False


def _ended(
    es: Elasticsearch, indices: Indices, settings: Settings, incident: Incident, at: datetime
) -> Recovery | None:
    if incident.recovered is not None:
        if at < incident.recovered:
            # Evidence from before the recovery, grouped after it (a catch-up run's next steps
            # came in after the recovery round closed the episode on the wall clock): the
            # episode had not ended.
            return None
        return Recovery(incident.recovered, "recovered")
    return episodes.recovery(es, indices, settings, incident, at)


def _same_episode(
    es: Elasticsearch,
    indices: Indices,
    current: Incident,
    alert: Alert,
    cause: Cause,
    *,
    adopt: bool,
    silence: Silence | None,
) -> Incident:
    if current.status is IncidentStatus.RESOLVED:
        # Resolved by hand while the failure went on: it is the same episode, so it comes back
        # (and is emailed as reopened) instead of opening a second incident for one failure.
        current = lifecycle.reopen(
            current, actor=SYSTEM, now=alert.created,
            reason=f"alert {alert.id}: the failure went on, no recovery since it was resolved",
        )  # fmt: skip
    stored = _absorb(es, indices, current, alert, silence, cause if adopt else None)
    if adopt:
        point(es, indices, "cause", cause.key, stored.id, alert.created)
    return stored


def _close_episode(
    es: Elasticsearch, indices: Indices, current: Incident, ended: Recovery
) -> Incident:
    if current.recovered is not None:
        return current
    return episodes.resolve(es, indices, current, ended)


def _open(
    es: Elasticsearch,
    indices: Indices,
    settings: Settings,
    alert: Alert,
    cause: Cause,
    previous: Incident | None,
    silence: Silence | None,
) -> Incident:
    incident = _new_incident(settings, alert, cause, previous)
    if silence is not None:
        incident = incident.model_copy(update=_maintenance(incident, silence, alert.created))
    stored = incidents.create(es, indices, incident)
    if stored is None:  # created by an earlier run that stopped before attaching the alert
        return incidents.get(es, indices, incident.id, user=None)
    log.info("incident %s opened (episode %d) for %s", incident.id, incident.episode,
             cause.describe())  # fmt: skip
    return stored


def _new_incident(
    settings: Settings, alert: Alert, cause: Cause, previous: Incident | None
) -> Incident:
    at = alert.created
    place = alert.place
    entity_type, _, entity_value = (cause.entity or "").partition("=")
    detail: dict[str, object] = {"alert": alert.id, "cause": cause.describe()}
    if previous is not None:
        detail["previous"] = previous.id
    return Incident(
        id=incident_id(cause.key, alert.id),
        title=alert.title,
        summary=alert.summary,
        severity=alert.severity,
        group_key=cause.key,
        cause_key=cause.province_key,
        place_key=cause.place_key,
        failure_class=cause.failure_class,
        detector=alert.detector.value,
        rule_id=alert.rule.id,
        rule_name=alert.rule.name,
        province_code=place.province_code if place else "",
        province_name=place.province_name if place else "",
        ward_code=place.ward_code if place else None,
        ward_name=place.ward_name if place else None,
        service=alert.service,
        entity_type=entity_type or None,
        entity_value=entity_value or None,
        alert_ids=(alert.id,),
        alert_count=1,
        event_count=alert.count,
        detectors=(alert.detector.value,),
        window_seconds=_window_seconds(alert),
        episode=previous.episode + 1 if previous else 1,
        previous_id=previous.id if previous else None,
        first_seen=episodes.seen(alert),
        last_seen=episodes.seen(alert),
        created=at,
        updated=at,
        ack_due=at + timedelta(seconds=settings.notify_ack_sla),
        resolve_due=at + timedelta(seconds=settings.incident_resolve_sla),
        timeline=(TimelineEntry(at=at, actor=SYSTEM, action="open", detail=detail),),
    )


def _absorb(
    es: Elasticsearch,
    indices: Indices,
    incident: Incident,
    alert: Alert,
    silence: Silence | None,
    adopt: Cause | None = None,
) -> Incident:
    if alert.id in incident.alert_ids:
        return incident
    at = alert.created
    entries = [_alert_entry(alert)]
    changes: dict[str, object] = {
        "alert_ids": (*incident.alert_ids, alert.id),
        "alert_count": incident.alert_count + 1,
        "event_count": incident.event_count + alert.count,
        "detectors": tuple(dict.fromkeys((*incident.detectors, alert.detector.value))),
        "window_seconds": max(incident.window_seconds, _window_seconds(alert)),
        "last_seen": max(incident.last_seen, episodes.seen(alert)),
        "updated": max(incident.updated, at),
    }
    if episodes.seen(alert) >= incident.last_seen:
        # The newest alert speaks for the incident, as its page shows: lists, emails and the API
        # read the stored summary. A parent keeps its own title (its communes, not one alert's).
        changes["summary"] = alert.summary or incident.summary
        if not incident.is_parent:
            changes["title"] = alert.title or incident.title
    ward = alert.place.ward_code if alert.place else None
    if incident.is_parent and ward is not None and ward not in incident.ward_codes:
        changes["ward_codes"] = tuple(sorted((*incident.ward_codes, ward)))
        entries.append(_entry(at, "commune", ward=ward, alert=alert.id))
    if adopt is not None and adopt.entity is not None:
        kind, _, value = adopt.entity.partition("=")
        changes.update(entity_type=kind, entity_value=value, group_key=adopt.key)
        entries.append(_entry(at, "entity", entity=adopt.entity, alert=alert.id))
    if alert.severity.rank > incident.severity.rank:
        # A worse alert raises the incident; a lower one never lowers an analyst's judgement.
        changes["severity"] = alert.severity
        entries.append(_entry(at, "severity", to=alert.severity.value, alert=alert.id))
    changes["timeline"] = (*incident.timeline, *entries)
    updated = incident.model_copy(update=changes)
    if silence is not None and incident.maintenance_id != silence.id:
        updated = updated.model_copy(update=_maintenance(updated, silence, at))
    return incidents.replace(es, indices, updated)


def _maintenance(incident: Incident, silence: Silence, at: datetime) -> dict[str, object]:
    """Mark an incident as under planned work: recorded, shown, nobody paged until it ends."""
    entry = _entry(at, "maintenance", silence=silence.id, until=silence.end.isoformat(),
                   reason=silence.reason, by=silence.created_by)  # fmt: skip
    return {
        "maintenance_id": silence.id,
        "maintenance_until": silence.end,
        "timeline": (*incident.timeline, entry),
    }


def _alert_entry(alert: Alert) -> TimelineEntry:
    return _entry(
        alert.created, "alert", alert=alert.id, detector=alert.detector.value,
        rule=alert.rule.id, severity=alert.severity.value, count=alert.count,
    )  # fmt: skip


def _entry(at: datetime, action: str, **detail: object) -> TimelineEntry:
    return TimelineEntry(at=at, actor=SYSTEM, action=action, detail=detail)


def _window_seconds(alert: Alert) -> float:
    return (alert.window.end - alert.window.start).total_seconds()
