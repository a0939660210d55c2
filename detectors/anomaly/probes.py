"""Endpoints whose health probe keeps failing: an outage seen within minutes, whatever the traffic.

A commune that expects three events an hour needs hours of silence before its silence proves
anything (:mod:`detectors.anomaly.silence`). Its web portal's health probe is a different kind of
series: it is checked every minute or so, and the probe collector reports every failed check (a
healthy one only now and then). So a *run* of failed checks is the signal: with ``p0`` the
target's share of failed reports in training (shrunk towards the national share, and an
over-estimate of the per-check rate, since healthy checks are mostly not reported), ``k``
failures in a row since the last good report have probability ``p0 ** k`` under normal
operation; an endpoint is down when that is below ``anomaly_alpha`` and ``k >= MIN_RUN``.

A probe series that simply stops (no result at all) is never an outage here: probe results come
from soc's own collector, so their silence is a monitoring gap, which the collector-silence check
of :mod:`detectors.anomaly.silence` reports from the collector's heartbeat. Probe results are not
traffic: :mod:`detectors.anomaly.features` leaves them out of volumes and silence. No writes here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from detectors.anomaly.features import PROBE_DATASET, Key, Level, composite_pages, event_indices
from detectors.base import iso
from soc.es.indices import Indices

#: Fewest failed checks in a row before an endpoint is called down, however rare failures are.
MIN_RUN = 3
#: Pseudo-reports of the national failure share added to a target's training counts.
PRIOR_WEIGHT = 20.0
#: Longest run looked at: a run that started earlier counts from here (still failing, still down).
LOOKBACK = timedelta(hours=6)
#: Failing targets asked about in one request (a ``filters`` aggregation each).
CHUNK = 500


@dataclass(frozen=True, slots=True)
class Failing:
    """An endpoint whose last ``run`` probe results, since ``since``, all failed."""

    key: Key
    since: datetime
    run: int
    share: float
    p_value: float
    last_ok: datetime | None
    target: str | None = None
    error: str | None = None
    status: int | None = None


def probe_query(start: datetime, end: datetime) -> dict[str, Any]:
    return {
        "bool": {
            "filter": [
                {"range": {"@timestamp": {"gte": iso(start), "lt": iso(end)}}},
                {"term": {"event.dataset": PROBE_DATASET}},
                {"exists": {"field": "service.name"}},
                {"exists": {"field": "locality.province.code"}},
            ]
        }
    }


_SOURCES: list[dict[str, Any]] = [
    {"province": {"terms": {"field": "locality.province.code"}}},
    {"ward": {"terms": {"field": "locality.ward.code", "missing_bucket": True}}},
    {"service": {"terms": {"field": "service.name"}}},
]
_FAILED = {"term": {"event.outcome": "failure"}}


def _key(k: dict[str, Any]) -> Key:
    ward = k.get("ward")
    level = Level.COMMUNE if ward else Level.PROVINCE
    return Key(level, str(k["province"]), ward, str(k["service"]))


def totals(
    es: Elasticsearch, indices: Indices, start: datetime, end: datetime
) -> dict[Key, tuple[int, int]]:
    """``(reports, failed reports)`` of every probed endpoint in ``[start, end)``."""
    out: dict[Key, tuple[int, int]] = {}
    for row in composite_pages(
        es,
        event_indices(indices, start, end),
        probe_query(start, end),
        _SOURCES,
        {"failed": {"filter": _FAILED}},
        size=10000,
    ):
        out[_key(row["key"])] = (int(row["doc_count"]), int(row["failed"]["doc_count"]))
    return out


def national_share(counts: dict[Key, tuple[int, int]]) -> float:
    """The share of failed probe reports over every endpoint (half a failure when none)."""
    reports = sum(n for n, _ in counts.values())
    failed = sum(f for _, f in counts.values())
    return (failed + 0.5) / (reports + 1.0)


def share(counts: tuple[int, int] | None, prior: float) -> float:
    reports, failed = counts or (0, 0)
    return (failed + PRIOR_WEIGHT * prior) / (reports + PRIOR_WEIGHT)


def _ms(value: Any) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(float(value) / 1000, tz=UTC)


def find(
    es: Elasticsearch,
    indices: Indices,
    counts: dict[Key, tuple[int, int]],
    prior: float,
    bucket_start: datetime,
    bucket_end: datetime,
    *,
    alpha: float,
    lookback: timedelta = LOOKBACK,
    min_run: int = MIN_RUN,
) -> list[Failing]:
    """Endpoints failing in ``[bucket_start, bucket_end)`` whose run of failures is improbable.

    ``counts`` and ``prior`` are the model's training counts and national failure share.
    """
    start = bucket_end - lookback
    index = event_indices(indices, start, bucket_end)
    # Who failed in this bucket at all (usually a few lost checks): a small request.
    in_bucket = {"bool": {"filter": [probe_query(bucket_start, bucket_end), _FAILED]}}
    candidates = [
        _key(row["key"])
        for row in composite_pages(
            es, event_indices(indices, bucket_start, bucket_end), in_bucket, _SOURCES, size=10000
        )
    ]
    failing: list[tuple[Key, datetime | None]] = []
    for i in range(0, len(candidates), CHUNK):
        failing += _still_failing(
            es, index, candidates[i : i + CHUNK], start, bucket_start, bucket_end
        )
    found: list[Failing] = []
    for i in range(0, len(failing), CHUNK):
        found += _runs(es, index, failing[i : i + CHUNK], counts, prior, start, bucket_end)
    return [f for f in found if f.run >= min_run and f.p_value < alpha]


def _key_filter(key: Key, *more: dict[str, Any]) -> dict[str, Any]:
    must: list[dict[str, Any]] = [
        {"term": {"locality.province.code": key.province}},
        {"term": {"service.name": key.service}},
        *more,
    ]
    body: dict[str, Any] = {"filter": must}
    if key.ward:
        must.append({"term": {"locality.ward.code": key.ward}})
    else:
        body["must_not"] = [{"exists": {"field": "locality.ward.code"}}]
    return {"bool": body}


def _still_failing(
    es: Elasticsearch,
    index: str,
    keys: list[Key],
    start: datetime,
    bucket_start: datetime,
    end: datetime,
) -> list[tuple[Key, datetime | None]]:
    """Of ``keys``, those whose newest result is a failure in the bucket, with their last good
    result in ``[start, end)`` (a target whose results stopped coming is the collector's silence,
    not the endpoint's)."""
    last = {"last": {"max": {"field": "@timestamp"}}}
    answer = es.search(
        index=index,
        size=0,
        query=probe_query(start, end),
        aggs={
            "keys": {
                "filters": {"filters": {str(i): _key_filter(k) for i, k in enumerate(keys)}},
                "aggs": {
                    "ok": {"filter": {"term": {"event.outcome": "success"}}, "aggs": last},
                    "bad": {"filter": _FAILED, "aggs": last},
                },
            }
        },
        ignore_unavailable=True,
        allow_no_indices=True,
    )
    out: list[tuple[Key, datetime | None]] = []
    for i, key in enumerate(keys):
        b = answer["aggregations"]["keys"]["buckets"][str(i)]
        last_bad = _ms(b["bad"]["last"]["value"])
        last_ok = _ms(b["ok"]["last"]["value"])
        if last_bad is None or last_bad < bucket_start or (last_ok and last_ok > last_bad):
            continue
        out.append((key, last_ok))
    return out


def _runs(
    es: Elasticsearch,
    index: str,
    failing: list[tuple[Key, datetime | None]],
    counts: dict[Key, tuple[int, int]],
    prior: float,
    start: datetime,
    end: datetime,
) -> list[Failing]:
    """The failures since the last good result of each failing endpoint, in one request."""
    filters: dict[str, Any] = {}
    for i, (key, last_ok) in enumerate(failing):
        since = last_ok if last_ok is not None else start
        span = {"range": {"@timestamp": {"gt": iso(since), "lt": iso(end)}}}
        filters[str(i)] = _key_filter(key, span, _FAILED)
    answer = es.search(
        index=index,
        size=0,
        query=probe_query(start, end),
        aggs={
            "runs": {
                "filters": {"filters": filters},
                "aggs": {
                    "first": {"min": {"field": "@timestamp"}},
                    "last": {
                        "top_hits": {
                            "size": 1,
                            "sort": [{"@timestamp": "desc"}],
                            "_source": ["soc.probe.target", "error.message", "http.response"],
                        }
                    },
                },
            }
        },
        ignore_unavailable=True,
        allow_no_indices=True,
    )
    buckets = answer["aggregations"]["runs"]["buckets"]
    out: list[Failing] = []
    for i, (key, last_ok) in enumerate(failing):
        b = buckets[str(i)]
        run = int(b["doc_count"])
        first = _ms(b["first"]["value"])
        if not run or first is None:
            continue
        p0 = share(counts.get(key), prior)
        hits = b["last"]["hits"]["hits"]
        src = hits[0]["_source"] if hits else {}
        out.append(
            Failing(
                key=key,
                since=first,
                run=run,
                share=p0,
                p_value=p0**run,
                last_ok=last_ok,
                target=(src.get("soc") or {}).get("probe", {}).get("target"),
                error=(src.get("error") or {}).get("message"),
                status=((src.get("http") or {}).get("response") or {}).get("status_code"),
            )
        )
    return out
