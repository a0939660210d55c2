"""A sync job to the national portal that stopped running, from its own run records.

How the runs are recorded and why a run of misses is significant after a few periods:
:mod:`detectors.anomaly.syncjob` (which also learns the jobs' periods and finds failing
communes). A finding when no ``sync-run`` record of the province came for ``k`` of its usual
periods with ``q ** k < anomaly_alpha`` and ``k >= MIN_RUN``, unless its collectors were not heard
(the silence is then the collector's). No writes here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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
    return _collectors_heard(es, indices, found, bucket_start, bucket_end)


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
    query = {
        "bool": {
            "filter": [
                {"range": {"@timestamp": {"gte": iso(start), "lt": iso(end)}}},
                {"terms": {field: values}},
            ]
        }
    }
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
