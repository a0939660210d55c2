"""From ``soc.incidents`` to notices: which emails an incident's current state calls for.

The policy (docs/notify.md): an email when an incident opens, on a meaningful update (communes
joined a province-wide parent, severity raised, reopened because the failure went on, escalation
when nobody acknowledged it) and when it is resolved. A child of a parent gets none: the parent's
email lists every commune. An incident under a maintenance window gets none until the window ends
(then, if it is still open, the usual emails). Asking again is harmless: every notice has a
stable Message-ID per recipient, so only what was never queued is queued. This module reads the
outbox through ``soc.notify.service`` and incidents only as values; it sends nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from soc.errors import LocalityError
from soc.incidents.models import Incident, IncidentStatus
from soc.localities import catalogue
from soc.notify import service
from soc.notify.models import Frozen, IncidentNotice, NoticeEvent, WardRef

if TYPE_CHECKING:
    from soc.notify.flows import Notifier, NotifyReport


class OpenIncident(Frozen):
    """What escalation needs to know of an incident: its latest notice and whether anyone
    acknowledged it since ``notified_at`` (when its first email was queued)."""

    notice: IncidentNotice
    notified_at: datetime
    acknowledged: bool = False


def escalations_due(
    incidents: Iterable[OpenIncident], now: datetime, sla: timedelta
) -> list[IncidentNotice]:
    """Escalation notices for unacknowledged open incidents: level 1 (province lead) once the SLA
    has passed, level 2 (national SOC) after twice the SLA. Asking again yields the same notices,
    which the outbox refuses to queue twice."""
    due: list[IncidentNotice] = []
    for item in incidents:
        if item.acknowledged or item.notice.event is NoticeEvent.RESOLVED:
            continue
        waited = now - item.notified_at
        for level in (1, 2):
            if waited >= sla * level:
                due.append(
                    item.notice.model_copy(update={"event": NoticeEvent.ESCALATION, "level": level})
                )
    return due


def notice_from_incident(incident: Incident, event: NoticeEvent) -> IncidentNotice:
    """The notice of one incident as it is now (a parent lists all its communes)."""
    codes = incident.ward_codes if incident.is_parent else ()
    wards = [WardRef(code=c, name=_ward_name(c, incident.province_code)) for c in codes]
    if not wards and incident.ward_code:
        wards = [WardRef(code=incident.ward_code, name=incident.ward_name or incident.ward_code)]
    return IncidentNotice(
        incident_id=incident.id,
        event=event,
        title=incident.title,
        severity=incident.severity,
        province_code=incident.province_code,
        province_name=incident.province_name,
        wards=tuple(wards),
        service=incident.service,
        status=incident.status.value,
        first_seen=incident.first_seen,
        last_seen=incident.last_seen,
        alert_count=incident.alert_count,
        event_count=incident.event_count,
        first_steps=_first_steps(incident),
        reopened=incident.reopened,
    )


def _ward_name(code: str, province: str) -> str:
    try:
        return catalogue().ward(code, province).name
    except LocalityError:
        return code


#: Which first steps (soc.notify.texts) fit an incident: by failure class, then by system.
_BY_CLASS = {"down": "outage", "web-attack": "web-attack", "sync": "sync"}
_BY_SERVICE = {"otp-gateway": "otp", "vneid": "login", "portal-sync": "sync",
               "web-portal": "web-attack", "national-portal": "outage"}  # fmt: skip


def _first_steps(incident: Incident) -> str:
    by_class = _BY_CLASS.get(incident.failure_class)
    return by_class or _BY_SERVICE.get(incident.service or "", "generic")


def incident_notices(
    notifier: Notifier,
    incident: Incident,
    earlier: Sequence[service.Notified] | None = None,
) -> list[IncidentNotice]:
    """The notices an incident's current state implies, given what the emails already queued for
    it said (looked up when not given)."""
    if incident.parent_id is not None or incident.status is IncidentStatus.FALSE_POSITIVE:
        return []  # a child: its parent speaks for every commune; a false positive: nothing
    if incident.maintenance_until is not None and notifier.clock() < incident.maintenance_until:
        return []  # planned work: recorded and shown, nobody paged until the window ends
    if earlier is None:
        earlier = service.notified(notifier.es, notifier.indices, [incident.id]).get(
            incident.id, []
        )
    if incident.status is IncidentStatus.RESOLVED:
        return [notice_from_incident(incident, NoticeEvent.RESOLVED)] if earlier else []
    found = [notice_from_incident(incident, NoticeEvent.NEW)]
    if earlier:
        found.extend(_updates(incident, earlier))
    if incident.acknowledged is None and incident.status is IncidentStatus.NEW:
        sla = timedelta(seconds=notifier.settings.notify_ack_sla)
        # Level 1 exactly when the incident's own acknowledgement deadline passes.
        item = OpenIncident(notice=found[0], notified_at=incident.ack_due - sla)
        found.extend(escalations_due([item], notifier.clock(), sla))
    return found


def _updates(incident: Incident, earlier: Sequence[service.Notified]) -> list[IncidentNotice]:
    """Meaningful changes since the emails already queued: each one email (stable key)."""
    found = []
    if incident.severity.rank > min(n.severity.rank for n in earlier):
        found.append(notice_from_incident(incident, NoticeEvent.SEVERITY_RAISED))
    if incident.is_parent and len(incident.ward_codes) > max(n.wards for n in earlier):
        found.append(notice_from_incident(incident, NoticeEvent.COMMUNES_ADDED))
    if incident.reopened:
        found.append(notice_from_incident(incident, NoticeEvent.REOPENED))
    return found


def notify_incidents(notifier: Notifier, incidents: Iterable[Incident]) -> NotifyReport:
    """Queue whatever emails these incidents call for (new, updated, escalated, resolved)."""
    items = list(incidents)
    before = service.notified(notifier.es, notifier.indices, [i.id for i in items])
    notices = [n for i in items for n in incident_notices(notifier, i, before.get(i.id, []))]
    return notifier.notify(notices)
