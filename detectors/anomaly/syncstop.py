"""A sync job to the national portal that stopped running, from its own run records.

How the runs are recorded and why a run of misses is significant after a few periods:
:mod:`detectors.anomaly.syncjob` (which also learns the jobs' periods and finds failing
communes). A finding when no ``sync-run`` record of the province came for ``k`` of its usual
periods with ``q ** k < anomaly_alpha`` and ``k >= MIN_RUN``, unless its collectors were not heard
(the silence is then the collector's). Only periods in which its data flowed count: after a gap in
the feed (two periods or more with nothing from its collectors, or from its province when none is
known: a backfill that ends before live traffic starts, a restart), the periods are counted from
the end of the gap, so the history -> live boundary is not a stopped job. No writes here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from detectors.anomaly.baseline.model import Model, SyncJob
from detectors.anomaly.features import Key, Level, composite_pages, event_indices
from detectors.anomaly.syncjob import (
    HOUR,
    LOOKBACK,
    MIN_RUN,
    PROVINCE_SOURCE,
    SYNC_SERVICE,
    runs_query,
    utc_of,
)
from detectors.base import iso
from soc.es.indices import Indices


@dataclass(frozen=True, slots=True)
class StoppedJob:
    """A province's sync job with no run record for ``missed`` of its periods.

    ``last_run`` is None when none was seen within the look-back (stopped at least that long);
    ``collectors`` are those that carried its records in training (heard after the first
    missing run was due, or none known).
    """

    key: Key
    last_run: datetime | None
    missed: int
    period: timedelta
    share: float
    p_value: float
    collectors: tuple[str, ...] = ()


def missing_share(job: SyncJob) -> float:
    """The job's chance to miss one run (half a run when training missed none)."""
    return (job.missed + 0.5) / (job.runs + job.missed + 1.0)


# ------------------------------------------------------------------ stopped jobs
def find_stopped(
    es: Elasticsearch,
    indices: Indices,
    model: Model,
    bucket_start: datetime,
    bucket_end: datetime,
    *,
    alpha: float,
    lookback: timedelta = LOOKBACK,
    min_run: int = MIN_RUN,
) -> list[StoppedJob]:
    """Provinces whose sync job wrote no run record for improbably many of its periods, while
    its collectors were heard."""
    if not model.sync_jobs:
        return []
    floor = bucket_end - lookback
    last: dict[str, datetime] = {}
    for row in composite_pages(
        es,
        event_indices(indices, floor, bucket_end),
        runs_query(floor, bucket_end),
        [PROVINCE_SOURCE],
        {"last": {"max": {"field": "@timestamp"}}},
    ):
        last[str(row["key"]["province"])] = utc_of(row["last"]["value"])
    found: list[StoppedJob] = []
    for province, job in sorted(model.sync_jobs.items()):
        if job.per_hour <= 0:
            continue
        period = HOUR / job.per_hour
        seen = last.get(province)
        missed = int((bucket_end - (seen or floor)) / period)
        q = missing_share(job)
        if missed < min_run or q**missed >= alpha:
            continue
        found.append(
            StoppedJob(
                key=Key(Level.PROVINCE, province, None, SYNC_SERVICE),
                last_run=seen,
                missed=missed,
                period=period,
                share=q,
                p_value=q**missed,
                collectors=job.collectors,
            )
        )
    flowing = _collectors_heard(es, indices, found, bucket_start, bucket_end)
    return _since_the_feed_resumed(es, indices, flowing, bucket_end, alpha, min_run, floor)


def _collectors_heard(
    es: Elasticsearch,
    indices: Indices,
    stopped: list[StoppedJob],
    bucket_start: datetime,
    bucket_end: datetime,
) -> list[StoppedJob]:
    """Those of ``stopped`` whose data still flows: their collectors sent something (an event or
    a heartbeat) in the bucket after the first missing run was due; for a job whose collector is
    not known, anything at all from its province did. Otherwise the collector (or the whole
    feed of the province: a gap in the data) went quiet, not the job."""
    if not stopped:
        return []

    def due(s: StoppedJob) -> datetime:
        first_missing = s.last_run + s.period if s.last_run else bucket_start
        return max(bucket_start, first_missing)

    start = min(due(s) for s in stopped)
    collectors = sorted({c for s in stopped for c in s.collectors})
    provinces = sorted({s.key.province for s in stopped if not s.collectors})
    heard = _last_heard(es, indices, "soc.collector.id", collectors, start, bucket_end)
    fed = _last_heard(es, indices, "locality.province.code", provinces, start, bucket_end)
    never = datetime.min.replace(tzinfo=UTC)

    def flowing(s: StoppedJob) -> bool:
        if s.collectors:
            return any(heard.get(c, never) >= due(s) for c in s.collectors)
        return fed.get(s.key.province, never) >= due(s)

    return [s for s in stopped if flowing(s)]


#: Consecutive periods with nothing from a job's collectors (or province) that make a gap.
GAP_PERIODS = 2


def _since_the_feed_resumed(
    es: Elasticsearch,
    indices: Indices,
    stopped: list[StoppedJob],
    bucket_end: datetime,
    alpha: float,
    min_run: int,
    floor: datetime,
) -> list[StoppedJob]:
    """``stopped`` with their missed periods counted from the end of the last gap in their feed
    (``GAP_PERIODS`` periods or more with nothing heard) since their last run; those still
    improbable enough. One date histogram, only when a job looks stopped."""
    if not stopped:
        return []
    slot = timedelta(minutes=max(1, int(min(s.period for s in stopped).total_seconds() // 60)))
    start = min(s.last_run or floor for s in stopped)
    collectors = sorted({c for s in stopped for c in s.collectors})
    provinces = sorted({s.key.province for s in stopped if not s.collectors})
    by_collector = _slots(es, indices, "soc.collector.id", collectors, start, bucket_end, slot)
    by_province = _slots(es, indices, "locality.province.code", provinces, start, bucket_end, slot)
    out = []
    for s in stopped:
        heard: set[datetime] = set()
        if s.collectors:
            for c in s.collectors:
                heard |= by_collector.get(c, set())
        else:
            heard = by_province.get(s.key.province, set())
        resumed = _resumed(heard, s.last_run or floor, bucket_end, slot, s.period)
        missed = int((bucket_end - max(resumed, s.last_run or floor)) / s.period)
        p_value = s.share**missed
        if missed >= min_run and p_value < alpha:
            out.append(replace(s, missed=missed, p_value=p_value))
    return out


def _resumed(
    heard: set[datetime], since: datetime, end: datetime, slot: timedelta, period: timedelta
) -> datetime:
    """The end of the last gap (``GAP_PERIODS`` periods or more of empty slots) in ``[since,
    end)``, else ``since``."""
    width = slot.total_seconds()
    at = datetime.fromtimestamp((end.timestamp() - 1e-3) // width * width, UTC)  # the last slot
    quiet = timedelta(0)
    while at + slot > since:
        if at in heard:
            quiet = timedelta(0)
        else:
            quiet += slot
            if quiet >= GAP_PERIODS * period:
                return at + quiet
        at -= slot
    return since


def _heard(field: str, values: list[str], start: datetime, end: datetime) -> dict[str, Any]:
    """Events of any dataset from ``values`` of ``field`` in ``[start, end)``."""
    return {
        "bool": {
            "filter": [
                {"range": {"@timestamp": {"gte": iso(start), "lt": iso(end)}}},
                {"terms": {field: values}},
            ]
        }
    }


def _slots(
    es: Elasticsearch,
    indices: Indices,
    field: str,
    values: list[str],
    start: datetime,
    end: datetime,
    slot: timedelta,
) -> dict[str, set[datetime]]:
    """The ``slot``-long time slots (epoch-aligned) in which each of ``values`` of ``field``
    sent anything (any dataset, heartbeats included)."""
    if not values:
        return {}
    minutes = int(slot.total_seconds() // 60)
    query = _heard(field, values, start, end)
    sources: list[dict[str, Any]] = [
        {"value": {"terms": {"field": field}}},
        {"slot": {"date_histogram": {"field": "@timestamp", "fixed_interval": f"{minutes}m"}}},
    ]
    found: dict[str, set[datetime]] = {}
    for row in composite_pages(es, event_indices(indices, start, end), query, sources):
        found.setdefault(str(row["key"]["value"]), set()).add(utc_of(row["key"]["slot"]))
    return found


def _last_heard(
    es: Elasticsearch,
    indices: Indices,
    field: str,
    values: list[str],
    start: datetime,
    end: datetime,
) -> dict[str, datetime]:
    """The last event (any dataset) in ``[start, end)`` of each of ``values`` of ``field``."""
    if not values:
        return {}
    query = _heard(field, values, start, end)
    return {
        str(row["key"]["value"]): utc_of(row["last"]["value"])
        for row in composite_pages(
            es,
            event_indices(indices, start, end),
            query,
            [{"value": {"terms": {"field": field}}}],
            {"last": {"max": {"field": "@timestamp"}}},
        )
    }
