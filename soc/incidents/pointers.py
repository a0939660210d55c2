"""Pointer documents in ``<prefix>-state``: the current incident of a cause, of a place, and the
parent of a cause in a province.

They are read with a real-time GET, so grouping needs no refresh between two alerts. A pointer only
names an incident id; the incident itself is read through ``soc.incidents.service``.
"""

from __future__ import annotations

from datetime import datetime

from elasticsearch import Elasticsearch, NotFoundError

from soc.errors import NotFound
from soc.es.indices import Indices
from soc.incidents import service as incidents
from soc.incidents.models import Incident


def _pointer_id(kind: str, key: str) -> str:
    return f"incident-{kind}:{key}"


def pointed(es: Elasticsearch, indices: Indices, kind: str, key: str) -> Incident | None:
    """The incident a pointer names, or None (no pointer, or the incident is gone)."""
    try:
        found = es.get(index=indices.state, id=_pointer_id(kind, key))
    except NotFoundError:
        return None
    try:
        return incidents.get(es, indices, found["_source"]["data"]["incident_id"], user=None)
    except NotFound:
        return None


def point(
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
