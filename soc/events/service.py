"""Write events to the daily ``<prefix>-events-YYYY.MM.DD`` indices, at most once each.

Every event gets a deterministic ``_id`` (a hash of its content without ``event.ingested``), and is
written with ``op_type=create``: replaying a batch after a crash or a timeout never doubles an
event, it only reports the copies as duplicates. This is the primitive the collectors' shipper and
the demo build on; it does not retry or spool (the shipper does).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from elasticsearch import Elasticsearch, helpers

from soc import timeutil
from soc.es.indices import Indices


def event_id(event: Mapping[str, Any]) -> str:
    """Deterministic id of an event: the same content always gives the same id."""
    content = dict(event)
    meta = dict(content.get("event") or {})
    meta.pop("ingested", None)
    content["event"] = meta
    digest = hashlib.blake2b(orjson.dumps(content, option=orjson.OPT_SORT_KEYS), digest_size=16)
    return digest.hexdigest()


def index_for(indices: Indices, event: Mapping[str, Any]) -> str:
    """The daily index of an event, by its ``@timestamp`` (ISO 8601 with an offset)."""
    stamp = timeutil.parse(str(event["@timestamp"]))
    return indices.events_for(stamp)


@dataclass
class BulkResult:
    """Outcome of one bulk write."""

    created: int = 0
    duplicates: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


def index_events(
    es: Elasticsearch,
    indices: Indices,
    events: Iterable[Mapping[str, Any]],
    *,
    refresh: bool = False,
    chunk_size: int = 1000,
) -> BulkResult:
    """Create each event once; report created, already present and rejected events."""
    actions = (
        {
            "_op_type": "create",
            "_index": index_for(indices, ev),
            "_id": event_id(ev),
            "_source": ev,
        }
        for ev in events
    )
    result = BulkResult()
    for ok, item in helpers.streaming_bulk(
        es,
        actions,
        chunk_size=chunk_size,
        raise_on_error=False,
        raise_on_exception=True,
        max_retries=3,
    ):
        info = item["create"]
        if ok:
            result.created += 1
        elif info.get("status") == 409:
            result.duplicates += 1
        else:
            result.errors.append(info)
    if refresh:
        es.indices.refresh(index=indices.events)
    return result


def by_ids(
    es: Elasticsearch, indices: Indices, ids: Iterable[str], *, limit: int = 20
) -> list[dict[str, Any]]:
    """Stored events by id (an alert's evidence), oldest first; ids that are gone are skipped."""
    wanted = list(dict.fromkeys(ids))[:limit]
    if not wanted:
        return []
    found = es.search(
        index=indices.events,
        query={"ids": {"values": wanted}},
        sort=[{"@timestamp": "asc"}],
        size=len(wanted),
        allow_no_indices=True,
        ignore_unavailable=True,
    )
    return [dict(hit["_source"], _id=hit["_id"]) for hit in found["hits"]["hits"]]


@dataclass(frozen=True)
class ProbeResult:
    at: datetime
    up: bool


def probe_results(
    es: Elasticsearch,
    indices: Indices,
    *,
    service: str,
    province: str,
    ward: str | None,
    after: datetime,
    until: datetime,
    limit: int = 500,
) -> list[ProbeResult]:
    """Health-probe results of one service at one place in ``(after, until]``, oldest first.

    A province-level place reads the probes that have no commune. Incidents use this to tell
    when an outage ended (``soc.incidents.episodes``).
    """
    where: dict[str, Any] = (
        {"term": {"locality.ward.code": ward}}
        if ward
        else {"bool": {"must_not": {"exists": {"field": "locality.ward.code"}}}}
    )
    found = es.search(
        index=indices.events,
        allow_no_indices=True,
        ignore_unavailable=True,
        size=limit,
        sort=[{"@timestamp": "asc"}],
        source_includes=["@timestamp", "soc.probe.up"],
        query={
            "bool": {
                "filter": [
                    {"term": {"event.dataset": "probe.http"}},
                    {"term": {"service.name": service}},
                    {"term": {"locality.province.code": province}},
                    where,
                    {"range": {"@timestamp": {"gt": after.isoformat(), "lte": until.isoformat()}}},
                ]
            }
        },
    )
    results = []
    for hit in found["hits"]["hits"]:
        src = hit["_source"]
        up = bool(((src.get("soc") or {}).get("probe") or {}).get("up"))
        results.append(ProbeResult(datetime.fromisoformat(src["@timestamp"]), up))
    return results


def probe_checks(
    es: Elasticsearch,
    indices: Indices,
    *,
    province: str,
    ward: str | None,
    service: str | None,
    until: datetime,
    size: int = 30,
) -> list[dict[str, Any]]:
    """The latest health-probe results (``event.dataset: probe.http``) of one locality and service
    up to ``until``, newest first: what an incident page shows as a probe's answers."""
    clauses: list[dict[str, Any]] = [
        {"term": {"event.dataset": "probe.http"}},
        {"term": {"locality.province.code": province}},
        {"range": {"@timestamp": {"lte": until.isoformat()}}},
    ]
    if ward:
        clauses.append({"term": {"locality.ward.code": ward}})
    if service:
        clauses.append({"term": {"service.name": service}})
    found = es.search(
        index=indices.events,
        query={"bool": {"filter": clauses}},
        sort=[{"@timestamp": "desc"}],
        size=size,
        allow_no_indices=True,
        ignore_unavailable=True,
    )
    return [dict(hit["_source"], _id=hit["_id"]) for hit in found["hits"]["hits"]]


def volume(
    es: Elasticsearch,
    indices: Indices,
    *,
    province: str,
    ward: str | None,
    service: str | None,
    start: datetime,
    end: datetime,
    bucket: timedelta,
) -> dict[datetime, int]:
    """Events per ``bucket`` of one locality and service over ``[start, end)``, empty buckets
    included: the observed series an anomaly incident is drawn on, and its history's band."""
    clauses: list[dict[str, Any]] = [
        {"term": {"locality.province.code": province}},
        {"range": {"@timestamp": {"gte": start.isoformat(), "lt": end.isoformat()}}},
    ]
    if ward:
        clauses.append({"term": {"locality.ward.code": ward}})
    if service:
        clauses.append({"term": {"service.name": service}})
    step = f"{int(bucket.total_seconds())}s"
    bounds = {"min": start.isoformat(), "max": (end - bucket).isoformat()}
    found = es.search(
        index=indices.events,
        query={"bool": {"filter": clauses}},
        size=0,
        aggs={
            "v": {
                "date_histogram": {
                    "field": "@timestamp",
                    "fixed_interval": step,
                    "min_doc_count": 0,
                    "extended_bounds": bounds,
                }
            }
        },
        allow_no_indices=True,
        ignore_unavailable=True,
    )
    buckets = (found.get("aggregations") or {}).get("v", {}).get("buckets", [])
    return {datetime.fromtimestamp(b["key"] / 1000, tz=UTC): int(b["doc_count"]) for b in buckets}
