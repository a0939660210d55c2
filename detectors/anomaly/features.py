"""Features of the anomaly model: one row per (locality, service, time bucket), from aggregations.

Every number comes from Elasticsearch composite aggregations over ``soc-events-*`` (paged with
``after_key``), never from scrolling raw events, so the cost grows with the number of localities
and services, not with the traffic. Two levels are extracted: *commune* (events that carry a
``locality.ward.code``) and *province* (all events of the province, commune or not).

Collector heartbeats (``event.dataset: collector.heartbeat``), health-probe results
(``probe.http``) and the sync job's run records (``event.action: sync-run``) are not traffic and
are excluded here; :mod:`detectors.anomaly.silence` reads the heartbeats,
:mod:`detectors.anomaly.probes` the probe results, :mod:`detectors.anomaly.syncjob` the runs.
This module must not score anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from elasticsearch import Elasticsearch

from detectors.base import iso
from soc.es.indices import Indices

HEARTBEAT_DATASET = "collector.heartbeat"
#: Health-probe results: soc's own checks, judged by :mod:`detectors.anomaly.probes`, not traffic.
PROBE_DATASET = "probe.http"
#: The sync job's own run records (one per run, one per commune it could not sync): a regular
#: series judged by :mod:`detectors.anomaly.syncjob`, not traffic.
SYNC_RUN_ACTION = "sync-run"
#: The service of a key that counts every service of its locality: a one-stop shop that stops
#: sending anything is a stronger signal than each of its small services alone.
ALL_SERVICES = "*"
PAGE_SIZE = 5000
#: Every composite page re-reads the matching events, so fewer, bigger pages are faster:
#: count-only pages stay under Elasticsearch's default bucket limit (65,536), totals pages (with
#: percentiles) stay modest for a 512 MiB heap.
COUNT_PAGE_SIZE = 60000
TOTALS_PAGE_SIZE = 10000
#: Latency ladder (ms): every row counts its events at or above each rung (rung 0: every event
#: with a duration). Counts, unlike percentiles, add up over buckets and test as a binomial: the
#: latency test (:func:`detectors.anomaly.scoring.latency`) asks how many events were slower than
#: the rung a key's training passed less than 1 % of the time.
LATENCY_RUNGS_MS: tuple[float, ...] = (0, 25, 50, 100, 200, 400, 800, 1600, 3200, 6400, 12800,
                                       25600, 51200)  # fmt: skip
#: The client of an event: the field most collectors carry (web access logs, VNeID, OTP, payment).
#: One client's events of one key within one hour are one *clump* (a login flow, a page and its
#: requests); an event without it is a clump of its own. See :func:`hourly_counts`.
CLIENT_FIELD = "source.ip"
#: Exact distinct counts up to this many clients per key and hour (HyperLogLog++ beyond).
CLIENT_PRECISION = 100


class Level(StrEnum):
    COMMUNE = "commune"
    PROVINCE = "province"


#: Ratio features: name -> (numerator aggregation, denominator aggregation).
RATIOS: dict[str, tuple[str, str]] = {
    "error_5xx": ("e5xx", "http"),
    "access_denied": ("denied", "http"),
    "failure": ("failed", "judged"),
    "otp_verify_failure": ("otp_verify_failed", "otp_verify"),
    "otp_send_failure": ("otp_send_failed", "otp_send"),
}


@dataclass(frozen=True, slots=True)
class Key:
    """Where a feature row belongs: a province or a commune, and one service."""

    level: Level
    province: str
    ward: str | None
    service: str

    def text(self) -> str:
        return f"{self.level.value}/{self.province}/{self.ward or '-'}/{self.service}"

    @classmethod
    def parse(cls, text: str) -> Key:
        level, province, ward, service = text.split("/", 3)
        return cls(Level(level), province, None if ward == "-" else ward, service)


#: Per key, ``[events, clumps]`` summed over the hours of training (see :func:`hourly_counts`).
Clumps = dict[Key, list[int]]


@dataclass(frozen=True, slots=True)
class Features:
    """What one key did in one bucket. ``counts`` holds the raw counts behind every ratio."""

    key: Key
    bucket: datetime
    count: int
    counts: dict[str, int] = field(default_factory=dict)
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    users: int = 0
    ips: int = 0
    collectors: tuple[str, ...] = ()
    #: Events at or above each rung of :data:`LATENCY_RUNGS_MS` (empty: not counted). A row
    #: made of several buckets' rows sums them rung by rung (:func:`add_slower`).
    slower: tuple[int, ...] = ()

    def ratio(self, name: str) -> tuple[int, int]:
        """``(numerator, denominator)`` of a ratio feature (see :data:`RATIOS`)."""
        num, den = RATIOS[name]
        return self.counts.get(num, 0), self.counts.get(den, 0)


def add_slower(rows: list[Features]) -> tuple[int, ...]:
    """The slow-request counts of several rows of one key, summed rung by rung."""
    counted = [r.slower for r in rows if r.slower]
    return tuple(sum(c) for c in zip(*counted, strict=True)) if counted else ()


def _filter(query: dict[str, Any], **subs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"filter": query}
    if subs:
        body["aggs"] = subs
    return body


_FAILED = {"term": {"event.outcome": "failure"}}


def _metrics(training: bool) -> dict[str, Any]:
    """Sub-aggregations computed for every composite bucket.

    Training skips the distinct users/IPs (context for people, not part of the baseline, and the
    costliest part of a week of aggregations) and asks which collectors carry each key.
    """
    aggs: dict[str, Any] = {
        "http": _filter({"exists": {"field": "http.response.status_code"}}),
        "e5xx": _filter({"range": {"http.response.status_code": {"gte": 500, "lte": 599}}}),
        "denied": _filter({"terms": {"http.response.status_code": [401, 403]}}),
        "judged": _filter({"terms": {"event.outcome": ["success", "failure"]}}),
        "failed": _filter(_FAILED),
        "otp_verify": _filter({"term": {"event.action": "otp-verify"}}, failed={"filter": _FAILED}),
        "otp_send": _filter({"term": {"event.action": "otp-send"}}, failed={"filter": _FAILED}),
        "latency": {
            "percentiles": {
                "field": "event.duration",
                "percents": [50, 95, 99] if training else [50, 95],
                "tdigest": {"compression": 50},
            }
        },
    }
    # One single-bucket filter per rung, not a range aggregation: composite pages of 5,000 or
    # 10,000 rows times 13 range buckets would pass Elasticsearch's search.max_buckets (65,536).
    for i, rung in enumerate(LATENCY_RUNGS_MS):
        aggs[f"slower{i}"] = _filter({"range": {"event.duration": {"gte": int(rung * 1e6)}}})
    if not training:
        aggs["users"] = {"cardinality": {"field": "user.name", "precision_threshold": 200}}
        aggs["ips"] = {"cardinality": {"field": "source.ip", "precision_threshold": 200}}
    else:
        # Which collectors carry a key's traffic: silence detection asks them for a heartbeat.
        aggs["collectors"] = {"terms": {"field": "soc.collector.id", "size": 4}}
    return aggs


def _sources(
    level: Level, bucket: timedelta | None, by_service: bool = True
) -> list[dict[str, Any]]:
    """Composite sources: the time bucket (none for totals), province, commune, service."""
    sources: list[dict[str, Any]] = []
    if bucket is not None:
        minutes = int(bucket.total_seconds() // 60)
        histogram = {"field": "@timestamp", "fixed_interval": f"{minutes}m"}
        sources.append({"bucket": {"date_histogram": histogram}})
    sources.append({"province": {"terms": {"field": "locality.province.code"}}})
    if level is Level.COMMUNE:
        sources.append({"ward": {"terms": {"field": "locality.ward.code"}}})
    if by_service:
        sources.append({"service": {"terms": {"field": "service.name"}}})
    return sources


def traffic_query(start: datetime, end: datetime, level: Level) -> dict[str, Any]:
    """Events of ``[start, end)`` that count as traffic at ``level``."""
    must: list[dict[str, Any]] = [
        {"range": {"@timestamp": {"gte": iso(start), "lt": iso(end)}}},
        {"exists": {"field": "service.name"}},
        {"exists": {"field": "locality.province.code"}},
    ]
    if level is Level.COMMUNE:
        must.append({"exists": {"field": "locality.ward.code"}})
    not_traffic = [
        {"terms": {"event.dataset": [HEARTBEAT_DATASET, PROBE_DATASET]}},
        {"term": {"event.action": SYNC_RUN_ACTION}},
    ]
    return {"bool": {"filter": must, "must_not": not_traffic}}


def composite_pages(
    es: Elasticsearch,
    index: str,
    query: dict[str, Any],
    sources: list[dict[str, Any]],
    aggs: dict[str, Any] | None = None,
    size: int = PAGE_SIZE,
) -> Iterator[dict[str, Any]]:
    """Every bucket of a composite aggregation, page after page."""
    after: dict[str, Any] | None = None
    while True:
        composite: dict[str, Any] = {"size": size, "sources": sources}
        if after is not None:
            composite["after"] = after
        body: dict[str, Any] = {"composite": composite}
        if aggs:
            body["aggs"] = aggs
        answer = es.search(
            index=index,
            size=0,
            query=query,
            aggs={"rows": body},
            ignore_unavailable=True,
            allow_no_indices=True,
        )
        rows = answer.get("aggregations", {}).get("rows")
        if not rows or not rows["buckets"]:
            return
        yield from rows["buckets"]
        after = rows.get("after_key")
        if after is None or len(rows["buckets"]) < size:
            return


def event_indices(indices: Indices, start: datetime, end: datetime) -> str:
    """The daily event indices ``[start, end)`` touches: fewer shards to ask than ``events-*``."""
    day, last = start.astimezone(UTC).date(), (end - timedelta(microseconds=1)).astimezone(UTC)
    names = []
    while day <= last.date():
        names.append(indices.events_for(day))
        day += timedelta(days=1)
    return ",".join(names)


def _ms(value: Any) -> float | None:
    # event.duration is in nanoseconds (ECS); people read milliseconds.
    return None if value is None else float(value) / 1e6


def _row(level: Level, bucket: dict[str, Any], start: datetime) -> Features:
    k = bucket["key"]
    counts = {
        name: int(bucket[name]["doc_count"])
        for name in ("http", "e5xx", "denied", "judged", "failed", "otp_verify", "otp_send")
    }
    counts["otp_verify_failed"] = int(bucket["otp_verify"]["failed"]["doc_count"])
    counts["otp_send_failed"] = int(bucket["otp_send"]["failed"]["doc_count"])
    values = bucket["latency"]["values"]
    collectors = tuple(str(b["key"]) for b in bucket.get("collectors", {}).get("buckets", []))
    return Features(
        key=Key(level, str(k["province"]), k.get("ward"), str(k["service"])),
        bucket=datetime.fromtimestamp(int(k["bucket"]) / 1000, tz=UTC) if "bucket" in k else start,
        count=int(bucket["doc_count"]),
        counts=counts,
        p50_ms=_ms(values.get("50.0")),
        p95_ms=_ms(values.get("95.0")),
        p99_ms=_ms(values.get("99.0")),
        users=int(bucket.get("users", {}).get("value", 0)),
        ips=int(bucket.get("ips", {}).get("value", 0)),
        collectors=collectors,
        slower=tuple(int(bucket[f"slower{i}"]["doc_count"]) for i in range(len(LATENCY_RUNGS_MS))),
    )


def extract(
    es: Elasticsearch,
    indices: Indices,
    start: datetime,
    end: datetime,
    bucket: timedelta,
    level: Level,
    *,
    training: bool = False,
) -> Iterator[Features]:
    """The feature rows of ``[start, end)`` cut into ``bucket``-long buckets, at one level.

    Buckets are aligned on the epoch (as the composite ``date_histogram`` aligns them); keys with
    no event in a bucket have no row: an absent row means zero traffic.
    """
    query = traffic_query(start, end, level)
    for raw in composite_pages(
        es,
        event_indices(indices, start, end),
        query,
        _sources(level, bucket),
        _metrics(training),
    ):
        yield _row(level, raw, start)


def totals(
    es: Elasticsearch, indices: Indices, start: datetime, end: datetime, level: Level
) -> Iterator[Features]:
    """One row per key over the whole of ``[start, end)``: what training learns ratios, latency
    percentiles and collectors from (``bucket`` is ``start``)."""
    query = traffic_query(start, end, level)
    index = event_indices(indices, start, end)
    sources = _sources(level, None)
    for raw in composite_pages(es, index, query, sources, _metrics(True), size=TOTALS_PAGE_SIZE):
        yield _row(level, raw, start)


def hourly_counts(
    es: Elasticsearch,
    indices: Indices,
    start: datetime,
    end: datetime,
    level: Level,
    *,
    by_service: bool = True,
    clumps: Clumps | None = None,
) -> Iterator[tuple[Key, datetime, int]]:
    """``(key, hour, events)`` for every key and hour with traffic: counts only, so a week of
    3,321 communes pages quickly (big pages, no bucket sub-aggregations).

    With ``clumps``, each hour also counts its distinct clients (:data:`CLIENT_FIELD`) and the
    events that carry one, and adds ``[events, clumps]`` to the key's entry, where an hour's
    clumps are its distinct clients plus its events without a client: the model's clump size.
    """
    query = traffic_query(start, end, level)
    index = event_indices(indices, start, end)
    sources = _sources(level, timedelta(hours=1), by_service)
    aggs = None
    if clumps is not None:
        aggs = {
            "clients": {
                "cardinality": {"field": CLIENT_FIELD, "precision_threshold": CLIENT_PRECISION}
            },
            "identified": {"value_count": {"field": CLIENT_FIELD}},
        }
    for raw in composite_pages(es, index, query, sources, aggs, size=COUNT_PAGE_SIZE):
        k = raw["key"]
        key = Key(level, str(k["province"]), k.get("ward"), str(k.get("service", ALL_SERVICES)))
        count = int(raw["doc_count"])
        if clumps is not None:
            anonymous = count - int(raw["identified"]["value"])
            tally = clumps.setdefault(key, [0, 0])
            tally[0] += count
            tally[1] += anonymous + min(int(raw["clients"]["value"]), count - anonymous)
        yield key, datetime.fromtimestamp(int(k["bucket"]) / 1000, tz=UTC), count
