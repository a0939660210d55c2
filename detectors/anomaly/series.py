"""The live series of the streaming detector, read from Elasticsearch: values and who was heard.

One series per (level, province, commune, service) x metric, where a metric is the event count
or one of the failure counts (failed operations, 5xx, 401/403, failed OTP verifications and
sends). Series keys are strings ``<Key.text()>|<metric>`` (see :func:`series_key`), the form
:class:`detectors.anomaly.stream.bank.StreamBank` takes. Everything comes from composite
aggregations bucketed by a ``date_histogram``, so a whole day of history is read in a few pages.

A bucket also says which collectors and which provinces were *heard* (any document at all,
heartbeats included): the live detector observes a series only when its collection was heard,
so a collection gap is a gap, not a drop to zero. This module must not score anything.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from detectors.anomaly.features import (
    COUNT_PAGE_SIZE,
    Key,
    Level,
    composite_pages,
    event_indices,
    traffic_query,
)
from detectors.base import iso
from soc.es.indices import Indices

_FAILED = {"term": {"event.outcome": "failure"}}
#: metric -> the filter of the events it counts (``count`` is every traffic event).
METRICS: dict[str, dict[str, Any] | None] = {
    "count": None,
    "failed": _FAILED,
    "e5xx": {"range": {"http.response.status_code": {"gte": 500, "lte": 599}}},
    "denied": {"terms": {"http.response.status_code": [401, 403]}},
    "otp_verify_failed": {"bool": {"filter": [{"term": {"event.action": "otp-verify"}}, _FAILED]}},
    "otp_send_failed": {"bool": {"filter": [{"term": {"event.action": "otp-send"}}, _FAILED]}},
}
PAGE_SIZE = 10000


def series_key(key: Key, metric: str) -> str:
    return f"{key.text()}|{metric}"


def parse(series: str) -> tuple[Key, str]:
    text, metric = series.rsplit("|", 1)
    return Key.parse(text), metric


@dataclass(slots=True)
class Bucket:
    """What one bucket holds: the non-zero series values, their collectors, who was heard."""

    start: datetime
    values: dict[str, float] = field(default_factory=dict)
    collectors: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Location key text -> collectors that carried its traffic in this bucket."""
    heard_collectors: set[str] = field(default_factory=set)
    heard_provinces: set[str] = field(default_factory=set)


def _aggs() -> dict[str, Any]:
    aggs: dict[str, Any] = {
        name: {"filter": flt} for name, flt in METRICS.items() if flt is not None
    }
    aggs["collectors"] = {"terms": {"field": "soc.collector.id", "size": 4}}
    return aggs


def _sources(bucket: timedelta, *more: tuple[str, str]) -> list[dict[str, Any]]:
    minutes = int(bucket.total_seconds() // 60)
    histogram = {"field": "@timestamp", "fixed_interval": f"{minutes}m"}
    return [{"bucket": {"date_histogram": histogram}}] + [
        {name: {"terms": {"field": fld}}} for name, fld in more
    ]


def _utc(ms: Any) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def read(
    es: Elasticsearch,
    indices: Indices,
    start: datetime,
    end: datetime,
    bucket: timedelta,
    *,
    province: str | None = None,
) -> list[Bucket]:
    """Every ``bucket``-long bucket of ``[start, end)`` (aligned on the epoch), in order,
    including the buckets in which nothing was heard (empty). ``province``: only its series'
    values (who was heard is still read for every province: a series' collector may beat under
    another province's code, and the warm-up must hear what the live read hears)."""
    out: dict[datetime, Bucket] = {}
    at = start
    while at < end:
        out[at] = Bucket(at)
        at += bucket

    def get(ms: Any) -> Bucket | None:
        return out.get(_utc(ms))

    index = event_indices(indices, start, end)
    for level in Level:
        more = [("province", "locality.province.code")]
        if level is Level.COMMUNE:
            more.append(("ward", "locality.ward.code"))
        more.append(("service", "service.name"))
        query = traffic_query(start, end, level)
        if province is not None:
            query["bool"]["filter"].append({"term": {"locality.province.code": province}})
        for raw in composite_pages(es, index, query, _sources(bucket, *more), _aggs(), PAGE_SIZE):
            k = raw["key"]
            b = get(k["bucket"])
            if b is None:
                continue
            key = Key(level, str(k["province"]), k.get("ward"), str(k["service"]))
            b.values[series_key(key, "count")] = float(raw["doc_count"])
            for metric in METRICS:
                if metric != "count" and raw[metric]["doc_count"]:
                    b.values[series_key(key, metric)] = float(raw[metric]["doc_count"])
            found = tuple(str(c["key"]) for c in raw["collectors"]["buckets"])
            if found:
                b.collectors[key.text()] = found
    anything = {"range": {"@timestamp": {"gte": iso(start), "lt": iso(end)}}}
    for name, fld, attr in (
        ("collector", "soc.collector.id", "heard_collectors"),
        ("province", "locality.province.code", "heard_provinces"),
    ):
        pages = composite_pages(
            es, index, anything, _sources(bucket, (name, fld)), None, COUNT_PAGE_SIZE
        )
        for raw in pages:
            b = get(raw["key"]["bucket"])
            if b is not None:
                getattr(b, attr).add(str(raw["key"][name]))
    return [out[at] for at in sorted(out)]


def by_province(values: dict[str, float]) -> dict[str, dict[str, float]]:
    """Series values split by province (the live detector's shards)."""
    split: dict[str, dict[str, float]] = defaultdict(dict)
    for series, value in values.items():
        split[series.split("/", 2)[1]][series] = value
    return split


def provinces(buckets: Iterable[Bucket]) -> set[str]:
    seen: set[str] = set()
    for b in buckets:
        seen |= b.heard_provinces
        seen |= set(by_province(b.values))
    return seen
