"""Province-wide causes: a parent incident over the communes that have one cause at once.

When ``incident_parent_threshold`` communes of one province have an open incident of the same
cause (service x failure class x entity; ``Cause.province_key``) in a live episode, a parent opens
over them: the children get its ``parent_id`` (their emails stop: the parent's one email lists
every commune), and later communes join the parent directly (``soc.incidents.grouping``), each a
timeline entry and a notified update. This module only builds and stores the parent.
"""

from __future__ import annotations

import logging
from datetime import datetime

from elasticsearch import Elasticsearch

from soc.alerts.models import Severity
from soc.config import Settings
from soc.errors import StaleVersion
from soc.es.indices import Indices
from soc.incidents import episodes
from soc.incidents import service as incidents
from soc.incidents.cause import Cause
from soc.incidents.episodes import SYSTEM
from soc.incidents.models import Incident, IncidentStatus, TimelineEntry, incident_id
from soc.incidents.pointers import point

log = logging.getLogger(__name__)


def maybe_parent(
    es: Elasticsearch, indices: Indices, settings: Settings, cause: Cause, at: datetime
) -> Incident | None:
    """Open the parent of ``cause`` in its province if enough communes have it now."""
    candidates = incidents.open_children(es, indices, cause.province_key)
    children = [c for c in candidates if at - c.last_seen < episodes.quiet_for(c, settings)]
    wards = sorted({c.ward_code for c in children if c.ward_code})
    if len(wards) < settings.incident_parent_threshold:
        return None
    parent = _parent_of(children, cause, wards, at)
    stored = incidents.create(es, indices, parent) or incidents.get(
        es, indices, parent.id, user=None
    )
    point(es, indices, "parent", cause.province_key, stored.id, at)
    for child in children:
        if child.parent_id is None:
            _link(es, indices, child, stored.id, at)
    log.info("parent incident %s opened over %d communes", stored.id, len(wards))
    return stored


def _parent_of(children: list[Incident], cause: Cause, wards: list[str], at: datetime) -> Incident:
    first = min(children, key=lambda c: (c.created, c.id))
    return first.model_copy(
        update={
            "id": incident_id(cause.province_key, f"parent:{first.id}"),
            "is_parent": True, "parent_id": None, "group_key": cause.province_key,
            "place_key": "", "ward_code": None, "ward_name": None, "ward_codes": tuple(wards),
            "title": f"{first.rule_name}: {len(wards)} communes of {first.province_name}",
            "severity": max((c.severity for c in children), key=lambda s: Severity(s).rank),
            "alert_ids": tuple(a for c in children for a in c.alert_ids),
            "alert_count": sum(c.alert_count for c in children),
            "event_count": sum(c.event_count for c in children),
            "detectors": tuple(dict.fromkeys(d for c in children for d in c.detectors)),
            "window_seconds": max(c.window_seconds for c in children),
            "status": IncidentStatus.NEW, "assignee": None, "comments": (), "version": None,
            "first_seen": min(c.first_seen for c in children),
            "last_seen": max(c.last_seen for c in children),
            "created": at, "updated": at, "acknowledged": None, "resolved": None,
            "recovered": None, "tta_seconds": None, "ttr_seconds": None, "reopened": 0,
            "episode": 1, "previous_id": None,
            "timeline": (
                TimelineEntry(at=at, actor=SYSTEM, action="open-parent",
                              detail={"children": [c.id for c in children], "wards": wards}),
            ),
        }
    )  # fmt: skip


def _link(
    es: Elasticsearch, indices: Indices, child: Incident, parent_id: str, at: datetime
) -> None:
    entry = TimelineEntry(at=at, actor=SYSTEM, action="parent", detail={"parent": parent_id})
    timeline = (*child.timeline, entry)
    updated = child.model_copy(update={"parent_id": parent_id, "timeline": timeline})
    try:
        incidents.replace(es, indices, updated)
    except StaleVersion:
        log.info("child %s changed meanwhile; it keeps no parent link", child.id)
