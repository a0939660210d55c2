"""Pointer documents in ``<prefix>-state``: the current incident of a cause, of a place, and the
parent of a cause in a province.

They are read with a real-time GET, so grouping needs no refresh between two alerts. A pointer only
names an incident id; the incident itself is read through ``soc.incidents.service``.
"""

from __future__ import annotations

from datetime import datetime

from elasticsearch import Elasticsearch

from soc.errors import NotFound
from soc.es.indices import Indices
from soc.es.state import Entry, StateIndex, StateKind
from soc.incidents import service as incidents
from soc.incidents.models import Incident

_KINDS = {
    "cause": StateKind.INCIDENT_CAUSE,
    "place": StateKind.INCIDENT_PLACE,
    "parent": StateKind.INCIDENT_PARENT,
}


def pointed(es: Elasticsearch, indices: Indices, kind: str, key: str) -> Incident | None:
    """The incident a pointer names, or None (no pointer, or the incident is gone)."""
    found = StateIndex(es, indices).get(_KINDS[kind], key)
    if found is None:
        return None
    try:
        return incidents.get(es, indices, found.data["incident_id"], user=None)
    except NotFound:
        return None


def point(
    es: Elasticsearch, indices: Indices, kind: str, key: str, target: str, at: datetime
) -> None:
    StateIndex(es, indices).put(Entry(_KINDS[kind], key, {"incident_id": target}, at))
