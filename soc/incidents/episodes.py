"""When an episode of a cause is over: recovery, and closing the incidents that recovered.

An episode ends, whichever comes first:

- **quiet**: no alert of the cause for ``incident_recovery_quiet`` seconds, and at least two of
  the longest detection window among its alerts (an anomaly alert speaks once per 15-minute
  bucket, a Sigma rule every minute: silence means "back to normal" only after the detector had
  two chances to fire again);
- **probe up**: for a ``down`` cause of a service at a place with health probes, the probes answer
  again for ``incident_recovery_probe`` seconds (two results at least) after the last alert.

Episodes run on the evidence's clock (:func:`seen`: the end of an alert's window), not on when a
detector got round to the window: a run catching up two hours of anomaly steps creates all their
alerts in one second, yet two outages in them are hours apart and must stay two incidents.

:func:`close_recovered` (a periodic job) resolves the open incidents whose episode is over, as the
system, with the reason in the timeline: that sends the "resolved" email and makes the next failure
a new incident. This module decides nothing about grouping (``soc.incidents.grouping``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from elasticsearch import Elasticsearch

from soc.alerts.models import Alert
from soc.config import Settings
from soc.errors import InvalidTransition, StaleVersion
from soc.es.indices import Indices
from soc.events import service as events
from soc.incidents import lifecycle
from soc.incidents import service as incidents
from soc.incidents.models import Incident

log = logging.getLogger(__name__)

SYSTEM = "soc-grouping"
#: The failure class whose end a health probe can see.
DOWN = "down"


@dataclass(frozen=True)
class Recovery:
    at: datetime
    reason: str


def seen(alert: Alert) -> datetime:
    """When an alert's evidence ends: its window's end, or its creation if that is earlier."""
    return min(alert.created, alert.window.end)


def quiet_for(incident: Incident, settings: Settings) -> timedelta:
    """How long the cause must stay silent before its episode is over."""
    return timedelta(seconds=max(settings.incident_recovery_quiet, 2 * incident.window_seconds))


def recovery(
    es: Elasticsearch, indices: Indices, settings: Settings, incident: Incident, now: datetime
) -> Recovery | None:
    """When the incident's episode ended between its last alert and ``now``; None if it goes on."""
    quiet = quiet_for(incident, settings)
    found: list[Recovery] = []
    if now - incident.last_seen >= quiet:
        seconds = round(quiet.total_seconds())
        found.append(Recovery(incident.last_seen + quiet, f"no alert for {seconds} s"))
    hold = timedelta(seconds=settings.incident_recovery_probe)
    probed_cause = incident.failure_class == DOWN and incident.service and not incident.is_parent
    if probed_cause and now - incident.last_seen >= hold:
        probed = _probe_recovery(es, indices, settings, incident, now)
        if probed is not None:
            found.append(probed)
    return min(found, key=lambda r: r.at) if found else None


def _probe_recovery(
    es: Elasticsearch, indices: Indices, settings: Settings, incident: Incident, now: datetime
) -> Recovery | None:
    results = events.probe_results(
        es,
        indices,
        service=incident.service or "",
        province=incident.province_code,
        ward=incident.ward_code,
        after=incident.last_seen,
        until=now,
    )
    hold = timedelta(seconds=settings.incident_recovery_probe)
    run_start: datetime | None = None
    run = 0
    for result in results:
        if not result.up:
            run_start, run = None, 0
            continue
        run_start = run_start or result.at
        run += 1
        if run >= 2 and result.at - run_start >= hold:
            return Recovery(result.at, f"health probe up since {run_start.isoformat()}")
    return None


def close_recovered(
    es: Elasticsearch, indices: Indices, settings: Settings, now: datetime, *, limit: int = 500
) -> int:
    """Resolve every open incident whose episode is over (the longest quiet first, ``limit`` per
    round); returns how many were resolved."""
    closed = 0
    for incident in incidents.open_oldest_first(es, indices, limit=limit):
        ended = recovery(es, indices, settings, incident, now)
        if ended is None:
            continue
        try:
            resolve(es, indices, incident, ended)
        except (StaleVersion, InvalidTransition):
            log.info("incident %s changed meanwhile; checked again next round", incident.id)
            continue
        closed += 1
    return closed


def resolve(es: Elasticsearch, indices: Indices, incident: Incident, ended: Recovery) -> Incident:
    """Close an incident whose episode is over, as the system, saying why and when."""
    done = lifecycle.recovered(incident, at=ended.at, reason=ended.reason, actor=SYSTEM)
    stored = incidents.replace(es, indices, done)
    log.info("incident %s recovered at %s (%s)", incident.id, ended.at.isoformat(), ended.reason)
    return stored
