"""The incident lifecycle as pure functions: each takes an incident and returns the changed copy.

Every function enforces its rule (allowed transitions, a reason for a severity change) and appends
one timeline entry naming who, when and what. Nothing here stores anything: callers persist the
result with ``soc.incidents.service.replace`` so that a concurrent change is refused, not lost.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from soc.alerts.models import Severity
from soc.errors import InvalidTransition, RequestError
from soc.incidents.models import TRANSITIONS, Comment, Incident, IncidentStatus, TimelineEntry


def _entry(actor: str, action: str, now: datetime, **detail: Any) -> TimelineEntry:
    return TimelineEntry(at=now, actor=actor, action=action, detail=detail)


def _with(incident: Incident, entry: TimelineEntry, **changes: Any) -> Incident:
    changes["timeline"] = (*incident.timeline, entry)
    changes["updated"] = entry.at
    return incident.model_copy(update=changes)


def transition(
    incident: Incident, to: IncidentStatus, *, actor: str, now: datetime, reason: str = ""
) -> Incident:
    """Move to ``to`` if the lifecycle allows it from the current status, else InvalidTransition."""
    current = incident.status
    if to not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "none"
        raise InvalidTransition(
            f"incident {incident.id!r} is {current.value}: it cannot become {to.value} "
            f"(allowed from {current.value}: {allowed})"
        )
    changes: dict[str, Any] = {"status": to}
    if to is IncidentStatus.NEW:
        return reopen(incident, actor=actor, now=now, reason=reason or "reopened by hand")
    if incident.acknowledged is None:
        # Closing an incident nobody acknowledged still ends the wait for acknowledgement.
        changes["acknowledged"] = now
        changes["tta_seconds"] = (now - incident.created).total_seconds()
    if to in (IncidentStatus.RESOLVED, IncidentStatus.FALSE_POSITIVE):
        changes["resolved"] = now
        changes["ttr_seconds"] = (now - incident.created).total_seconds()
    entry = _entry(
        actor, "transition", now, **{"from": current.value, "to": to.value}, reason=reason
    )
    return _with(incident, entry, **changes)


def reopen(incident: Incident, *, actor: str, now: datetime, reason: str) -> Incident:
    """Back to ``new``: the close times are cleared, so SLA and MTTR count the new episode."""
    entry = _entry(actor, "reopen", now, **{"from": incident.status.value}, reason=reason)
    return _with(
        incident,
        entry,
        status=IncidentStatus.NEW,
        resolved=None,
        recovered=None,
        ttr_seconds=None,
        reopened=incident.reopened + 1,
    )


def recovered(incident: Incident, *, at: datetime, reason: str, actor: str) -> Incident:
    """The episode is over (quiet, probe up): an open incident is resolved at the recovery time;
    a closed one only records it. Either way the next failure of the cause is a new episode."""
    entry = _entry(actor, "recovered", at, reason=reason)
    changes: dict[str, Any] = {"recovered": at}
    if incident.status.is_open:
        changes["status"] = IncidentStatus.RESOLVED
        changes["resolved"] = at
        # At least 0: an incident made by a catch-up run can have recovered before it was made.
        changes["ttr_seconds"] = max(0.0, (at - incident.created).total_seconds())
    # Not acknowledged by it: a recovery is no person taking the incident (MTTA stays honest).
    return _with(incident, entry, **changes)


def assign(incident: Incident, assignee: str | None, *, actor: str, now: datetime) -> Incident:
    entry = _entry(actor, "assign", now, **{"from": incident.assignee, "to": assignee})
    return _with(incident, entry, assignee=assignee)


def comment(incident: Incident, text: str, *, actor: str, now: datetime) -> Incident:
    if not text.strip():
        raise RequestError("comment text is empty")
    note = Comment(id=uuid.uuid4().hex, at=now, author=actor, text=text)
    entry = _entry(actor, "comment", now, comment_id=note.id)
    return _with(incident, entry, comments=(*incident.comments, note))


def set_severity(
    incident: Incident, severity: Severity, *, reason: str, actor: str, now: datetime
) -> Incident:
    """Change the severity; a reason is required because it changes SLAs and the status board."""
    if not reason.strip():
        raise RequestError("a severity change needs a reason")
    entry = _entry(
        actor,
        "severity",
        now,
        **{"from": incident.severity.value, "to": severity.value},
        reason=reason,
    )
    return _with(incident, entry, severity=severity)
