"""Load and store incidents: the only module that reads or writes ``<prefix>-incidents``.

Every read takes the caller's province scope so that a provincial IT user cannot see, count or
search another province's incidents; an out-of-scope id is simply "not found". Every write is
optimistic: it names the version it read (``if_seq_no``/``if_primary_term``) and a concurrent
change turns into :class:`~soc.errors.StaleVersion` instead of a silent overwrite. New incidents are
written with ``op_type=create`` under a deterministic id, so a retried grouping never doubles one.
This module must not decide lifecycle rules (``soc.incidents.lifecycle``) nor group alerts
(``soc.incidents.grouping``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from elastic_transport import ObjectApiResponse
from elasticsearch import ConflictError, Elasticsearch, NotFoundError

from soc.auth.models import User
from soc.errors import NotFound, StaleVersion
from soc.es.indices import Indices
from soc.incidents.models import DETAIL_FIELDS, OPEN_STATUSES, Incident, summary_row

#: Deepest page Elasticsearch serves with from/size (index.max_result_window).
MAX_WINDOW = 10_000


@dataclass(frozen=True)
class IncidentFilter:
    """What an incident list asks for; every field is optional and they combine with AND."""

    province: str | None = None
    ward: str | None = None
    service: str | None = None
    severity: str | None = None
    status: str | None = None
    assignee: str | None = None
    parent_id: str | None = None
    open_only: bool = False
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None
    page: int = 1
    size: int = 50


@dataclass(frozen=True)
class IncidentPage:
    items: list[Incident]
    total: int
    page: int
    size: int


def get(es: Elasticsearch, indices: Indices, incident_id: str, *, user: User | None) -> Incident:
    """The incident, or :class:`NotFound` when it does not exist or is outside ``user``'s scope."""
    try:
        found = es.get(index=indices.incidents, id=incident_id)
    except NotFoundError:
        raise NotFound(f"no incident {incident_id!r}") from None
    incident = Incident.from_hit(dict(found))
    if user is not None and not user.can_see(incident.province_code):
        # Same answer as a missing id: the existence of another province's incident is private.
        raise NotFound(f"no incident {incident_id!r}")
    return incident


def get_many(
    es: Elasticsearch, indices: Indices, ids: list[str], *, user: User | None
) -> dict[str, Incident]:
    """The incidents of ``ids`` that exist and ``user`` may see, by id (one round trip)."""
    wanted = list(dict.fromkeys(i for i in ids if i))
    if not wanted:
        return {}
    found = es.mget(index=indices.incidents, ids=wanted)
    out: dict[str, Incident] = {}
    for doc in found["docs"]:
        if doc.get("found"):
            incident = Incident.from_hit(dict(doc))
            if user is None or user.can_see(incident.province_code):
                out[incident.id] = incident
    return out


def create(es: Elasticsearch, indices: Indices, incident: Incident) -> Incident | None:
    """Store a new incident; None when one with that id exists already (a retried grouping)."""
    try:
        written = es.create(index=indices.incidents, id=incident.id, document=incident.to_doc())
    except ConflictError:
        return None
    return incident.model_copy(update={"version": (written["_seq_no"], written["_primary_term"])})


def replace(es: Elasticsearch, indices: Indices, incident: Incident) -> Incident:
    """Write ``incident`` over the version it was read at; :class:`StaleVersion` if it moved on."""
    if incident.version is None:
        raise ValueError("replace() needs an incident read from the store (with a version)")
    seq_no, term = incident.version
    try:
        written = es.index(
            index=indices.incidents,
            id=incident.id,
            document=incident.to_doc(),
            if_seq_no=seq_no,
            if_primary_term=term,
        )
    except ConflictError:
        raise StaleVersion(
            f"incident {incident.id!r} was changed by someone else since version "
            f"{incident.etag}; reload it and try again"
        ) from None
    return incident.model_copy(update={"version": (written["_seq_no"], written["_primary_term"])})


def search_rows(
    es: Elasticsearch, indices: Indices, flt: IncidentFilter, *, user: User
) -> tuple[list[dict[str, Any]], int]:
    """Like :func:`search`, as :class:`IncidentSummary` JSON rows and the total: the API list.

    Elasticsearch leaves the history out (``_source`` excludes) and no model is built per row.
    """
    found = _page(es, indices, flt, user, excludes=list(DETAIL_FIELDS))
    rows = [summary_row(hit) for hit in found["hits"]["hits"]]
    return rows, int(found["hits"]["total"]["value"])


def _page(
    es: Elasticsearch,
    indices: Indices,
    flt: IncidentFilter,
    user: User,
    *,
    excludes: list[str] | None,
) -> ObjectApiResponse[Any]:
    """One page of the filter's hits within the user's scope, newest activity first.

    ``request_cache``: Elasticsearch keeps the shard's query result (matches, sort, total) until
    the next refresh that changes the index, and answers exactly what an uncached search would;
    the list asks the same few filters over and over, and a hit saves about a third of the
    search's CPU there (``bench/reports/api-incidents.md``). Hits are opt-in for ``size`` > 0.
    """
    return es.search(
        request_cache=True,
        index=indices.incidents,
        query=query(flt, user),
        sort=[{"incident.last_seen": "desc"}, {"incident.id": "asc"}],
        from_=_start(flt),
        size=flt.size,
        track_total_hits=True,
        source_excludes=excludes,
        seq_no_primary_term=True,
    )


def _start(flt: IncidentFilter) -> int:
    start = (flt.page - 1) * flt.size
    if start + flt.size > MAX_WINDOW:
        start = max(0, MAX_WINDOW - flt.size)  # callers validate; this keeps ES from refusing
    return start


def search(es: Elasticsearch, indices: Indices, flt: IncidentFilter, *, user: User) -> IncidentPage:
    """One page of incidents matching ``flt`` within ``user``'s scope, newest activity first."""
    found = _page(es, indices, flt, user, excludes=None)
    items = [Incident.from_hit(dict(hit)) for hit in found["hits"]["hits"]]
    return IncidentPage(items, int(found["hits"]["total"]["value"]), flt.page, flt.size)


def query(flt: IncidentFilter, user: User) -> dict[str, Any]:
    """The bool query of a filter, always with the user's province scope (public for the bench)."""
    clauses: list[dict[str, Any]] = []
    scope = user.province_scope()
    if scope is not None:
        clauses.append({"terms": {"locality.province.code": scope}})
    exact = {
        "locality.province.code": flt.province,
        "service.name": flt.service,
        "incident.severity": flt.severity,
        "incident.status": flt.status,
        "incident.assignee": flt.assignee,
        "incident.parent_id": flt.parent_id,
    }
    clauses.extend({"term": {field: value}} for field, value in exact.items() if value)
    if flt.ward:
        # A parent incident lists its communes in ward_codes; a child names its own ward.
        clauses.append(
            {
                "bool": {
                    "should": [
                        {"term": {"locality.ward.code": flt.ward}},
                        {"term": {"incident.ward_codes": flt.ward}},
                    ]
                }
            }
        )
    if flt.open_only:
        clauses.append({"terms": {"incident.status": sorted(s.value for s in OPEN_STATUSES)}})
    if flt.since or flt.until:
        bounds = {}
        if flt.since:
            bounds["gte"] = flt.since.isoformat()
        if flt.until:
            bounds["lt"] = flt.until.isoformat()
        clauses.append({"range": {"incident.last_seen": bounds}})
    must: list[dict[str, Any]] = []
    if flt.q:
        # simple_query_string never fails on odd syntax, so user text cannot cause a 500.
        must.append(
            {
                "simple_query_string": {
                    "query": flt.q,
                    "fields": ["incident.title", "incident.summary"],
                    "default_operator": "and",
                }
            }
        )
    return {"bool": {"filter": clauses, "must": must or [{"match_all": {}}]}}


def open_children(es: Elasticsearch, indices: Indices, cause: str) -> list[Incident]:
    """Open commune incidents of one cause in a province: candidates for a parent (the caller
    keeps those whose episode is live)."""
    es.indices.refresh(index=indices.incidents)
    found = es.search(
        index=indices.incidents,
        query={
            "bool": {
                "filter": [
                    {"term": {"incident.cause_key": cause}},
                    {"term": {"incident.is_parent": False}},
                    {"terms": {"incident.status": sorted(s.value for s in OPEN_STATUSES)}},
                ]
            }
        },
        size=1000,
        seq_no_primary_term=True,
    )
    return [Incident.from_hit(dict(hit)) for hit in found["hits"]["hits"]]


def open_oldest_first(es: Elasticsearch, indices: Indices, *, limit: int) -> list[Incident]:
    """Open incidents, the longest quiet first: the ones whose episode most likely ended."""
    es.indices.refresh(index=indices.incidents)
    found = es.search(
        index=indices.incidents,
        query={"terms": {"incident.status": sorted(s.value for s in OPEN_STATUSES)}},
        sort=[{"incident.last_seen": "asc"}, {"incident.id": "asc"}],
        size=limit,
        seq_no_primary_term=True,
    )
    return [Incident.from_hit(dict(hit)) for hit in found["hits"]["hits"]]


def under_maintenance(es: Elasticsearch, indices: Indices, silence_id: str) -> list[Incident]:
    """Incidents a maintenance window marked (to end their quiet when the window ends early)."""
    es.indices.refresh(index=indices.incidents)
    found = es.search(
        index=indices.incidents,
        query={"term": {"incident.maintenance_id": silence_id}},
        size=1000,
        seq_no_primary_term=True,
    )
    return [Incident.from_hit(dict(hit)) for hit in found["hits"]["hits"]]


def durations_by_province(
    es: Elasticsearch, indices: Indices, *, user: User
) -> list[dict[str, Any]]:
    """MTTA and MTTR (seconds) per province within ``user``'s scope, with incident counts."""
    scope = user.province_scope()
    flt: list[dict[str, Any]] = (
        [] if scope is None else [{"terms": {"locality.province.code": scope}}]
    )
    found = es.search(
        index=indices.incidents,
        query={"bool": {"filter": flt}},
        size=0,
        aggs={
            "p": {
                "terms": {"field": "locality.province.code", "size": 100},
                "aggs": {
                    "mtta": {"avg": {"field": "incident.tta_seconds"}},
                    "mttr": {"avg": {"field": "incident.ttr_seconds"}},
                    "open": {
                        "filter": {
                            "terms": {"incident.status": sorted(s.value for s in OPEN_STATUSES)}
                        }
                    },
                },
            }
        },
    )
    return [
        {
            "province_code": b["key"],
            "incidents": b["doc_count"],
            "open": b["open"]["doc_count"],
            "mtta_seconds": b["mtta"]["value"],
            "mttr_seconds": b["mttr"]["value"],
        }
        for b in found["aggregations"]["p"]["buckets"]
    ]


@dataclass(frozen=True)
class OpenCounts:
    """Open incidents within a user's scope, counted per province, severity, commune and service."""

    by_province: dict[str, dict[str, int]]
    by_ward: dict[str, int]
    by_service: dict[str, int]


def open_counts(
    es: Elasticsearch,
    indices: Indices,
    *,
    user: User,
    service: str | None = None,
    province: str | None = None,
) -> OpenCounts:
    """Open incidents by province and severity (and by commune, service): the status board's
    numbers, optionally for one service or one province."""
    flt = IncidentFilter(service=service, province=province, open_only=True)
    found = es.search(
        index=indices.incidents,
        query=query(flt, user),
        size=0,
        aggs={
            "p": {
                "terms": {"field": "locality.province.code", "size": 100},
                "aggs": {"s": {"terms": {"field": "incident.severity", "size": 10}}},
            },
            "w": {"terms": {"field": "locality.ward.code", "size": 5000}},
            "svc": {"terms": {"field": "service.name", "size": 100}},
        },
    )
    aggs = found["aggregations"]
    return OpenCounts(
        by_province={
            b["key"]: {s["key"]: int(s["doc_count"]) for s in b["s"]["buckets"]}
            for b in aggs["p"]["buckets"]
        },
        by_ward={b["key"]: int(b["doc_count"]) for b in aggs["w"]["buckets"]},
        by_service={b["key"]: int(b["doc_count"]) for b in aggs["svc"]["buckets"]},
    )
