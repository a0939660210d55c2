"""The sync job to the national portal, from its own run records: a commune it keeps failing to
sync (this module) and a job that stopped running (:mod:`detectors.anomaly.syncstop`).

Every run (every 5 minutes in the provinces' set-up) the province's sync job logs one
``sync-run`` record for the province (success, with the communes synced and failed, under a
``soc.sync.run_id``) and, for each commune it could not sync, one ``sync-run`` failure with that
commune's locality and the reason. Unlike traffic, that is a *regular* series whatever the
commune does, so, as for health probes (:mod:`detectors.anomaly.probes`), a run of failures is
significant after a few runs, not after hours:

- *a failing commune*: the commune failed the last ``k`` runs of its province in a row (the
  newest run among them, in the bucket); with ``p0`` its share of failed runs in training, shrunk
  towards the national share (:data:`PRIOR_WEIGHT` pseudo-runs), the streak has probability
  ``p0 ** k``; it is a finding when that is below ``anomaly_alpha`` and ``k >= MIN_RUN``.
- *a stopped job*: no ``sync-run`` record of the province for ``k`` of its usual periods (learnt:
  the median runs per hour in training); with ``q`` the share of runs missing in training
  (shrunk: half a run when none was), a finding when ``q ** k < anomaly_alpha`` and
  ``k >= MIN_RUN``. A run that is only late (within its period) never counts. If the collectors
  that carried the job's records were not heard after the first missing run was due (neither
  event nor heartbeat, in the bucket), the silence is the collector's
  (:mod:`detectors.anomaly.silence` reports it), not the job's, and nothing is claimed here; for
  a job whose collector is not known, nothing at all from its province means a gap in the data
  (a backfill that ends before live traffic starts), not a stopped job.

Run records are not traffic (:mod:`detectors.anomaly.features` leaves them out). Everything comes
from composite aggregations: training reads hourly run counts and per-commune failure counts; a
bucket asks which communes failed in it (usually a handful of single lost runs), then, for those
only, the runs of their provinces over :data:`LOOKBACK`; and the last run record of every
province. No writes here.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from detectors.anomaly.baseline.model import Model, SyncJob
from detectors.anomaly.features import (
    SYNC_RUN_ACTION,
    Key,
    Level,
    composite_pages,
    event_indices,
)
from detectors.base import iso
from soc.es.indices import Indices

SYNC_SERVICE = "portal-sync"
#: Fewest failed (or missing) runs in a row before a finding, however rare failures are: three
#: runs of 5 minutes, so a stop is named within two 15-minute buckets.
MIN_RUN = 3
#: Pseudo-runs of the national failure share added to a commune's training counts.
PRIOR_WEIGHT = 20.0
#: Longest run of failures (or silence) looked at: one that started earlier counts from here.
LOOKBACK = timedelta(hours=6)
HOUR = timedelta(hours=1)
PAGE = 10000


@dataclass(frozen=True, slots=True)
class FailingCommune:
    """A commune whose last ``runs`` sync runs, since ``since``, all failed."""

    key: Key
    since: datetime
    runs: int
    share: float
    p_value: float
    last_ok: datetime | None
    error: str | None = None
    reason: str | None = None
    run_id: str | None = None


def runs_query(start: datetime, end: datetime, *more: dict[str, Any]) -> dict[str, Any]:
    return {
        "bool": {
            "filter": [
                {"range": {"@timestamp": {"gte": iso(start), "lt": iso(end)}}},
                {"term": {"event.action": SYNC_RUN_ACTION}},
                {"exists": {"field": "locality.province.code"}},
                *more,
            ]
        }
    }


_SUMMARY = {"bool": {"must_not": [{"exists": {"field": "locality.ward.code"}}]}}
_FAILED = {"term": {"event.outcome": "failure"}}
_IN_COMMUNE = {"exists": {"field": "locality.ward.code"}}
PROVINCE_SOURCE = {"province": {"terms": {"field": "locality.province.code"}}}
_WARD = {"ward": {"terms": {"field": "locality.ward.code"}}}


def utc_of(ms: Any) -> datetime:
    return datetime.fromtimestamp(float(ms) / 1000, tz=UTC)


# ------------------------------------------------------------------ training
@dataclass(frozen=True, slots=True)
class Learnt:
    jobs: dict[str, SyncJob]
    failures: dict[str, int]
    share: float


def learn(es: Elasticsearch, indices: Indices, start: datetime, end: datetime) -> Learnt:
    """Each province's runs (per hour, missing), each commune's failed runs, the national share."""
    index = event_indices(indices, start, end)
    hourly: dict[str, dict[datetime, int]] = defaultdict(dict)
    units: dict[str, float] = defaultdict(float)
    hour_source = {"hour": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1h"}}}
    for row in composite_pages(
        es,
        index,
        runs_query(start, end, _SUMMARY),
        [PROVINCE_SOURCE, hour_source],
        {
            "synced": {"sum": {"field": "soc.sync.units_synced"}},
            "failed": {"sum": {"field": "soc.sync.units_failed"}},
        },
        size=PAGE,
    ):
        province = str(row["key"]["province"])
        hourly[province][utc_of(row["key"]["hour"])] = int(row["doc_count"])
        units[province] += float(row["synced"]["value"]) + float(row["failed"]["value"])
    collectors: dict[str, tuple[str, ...]] = {}
    for row in composite_pages(
        es,
        index,
        runs_query(start, end),
        [PROVINCE_SOURCE],
        {"collectors": {"terms": {"field": "soc.collector.id", "size": 4}}},
    ):
        found = row["collectors"]["buckets"]
        collectors[str(row["key"]["province"])] = tuple(sorted(str(b["key"]) for b in found))
    failures: dict[str, int] = {}
    for row in composite_pages(
        es, index, runs_query(start, end, _FAILED, _IN_COMMUNE), [PROVINCE_SOURCE, _WARD], size=PAGE
    ):
        failures[f"{row['key']['province']}/{row['key']['ward']}"] = int(row["doc_count"])
    jobs = {
        province: _job(hours, end, collectors.get(province, ()))
        for province, hours in hourly.items()
    }
    unit_runs = sum(units.values())
    failed = sum(failures.values())
    return Learnt(jobs, failures, (failed + 0.5) / (max(unit_runs, failed) + 1.0))


def _job(hours: dict[datetime, int], end: datetime, collectors: tuple[str, ...]) -> SyncJob:
    """The usual runs per hour is the median of the hours the job ran in; every hour from its
    first one on (a stop leaves hours empty) is expected to hold that many."""
    per_hour = float(statistics.median(hours.values()))
    usual = round(per_hour)
    missed, at = 0, min(hours)
    while at < end:
        missed += max(0, usual - hours.get(at, 0))
        at += HOUR
    return SyncJob(runs=sum(hours.values()), per_hour=per_hour, missed=missed,
                   collectors=collectors)  # fmt: skip


def failure_share(model: Model, province: str, ward: str) -> float:
    """A commune's chance to fail one run: its training failures over its province's runs,
    shrunk towards the national share."""
    job = model.sync_jobs.get(province)
    runs = job.runs if job else 0
    failed = model.sync_failures.get(f"{province}/{ward}", 0)
    return (failed + PRIOR_WEIGHT * model.sync_failure_share) / (runs + PRIOR_WEIGHT)


# ------------------------------------------------------------------ failing communes
def find_failing(
    es: Elasticsearch,
    indices: Indices,
    model: Model,
    bucket_start: datetime,
    bucket_end: datetime,
    *,
    alpha: float,
    lookback: timedelta = LOOKBACK,
    min_run: int = MIN_RUN,
) -> list[FailingCommune]:
    """Communes that failed a run in the bucket and the runs before it, improbably many."""
    last_hit = {
        "top_hits": {
            "size": 1,
            "sort": [{"@timestamp": "desc"}],
            "_source": ["error.code", "message", "soc.sync.run_id"],
        }
    }
    in_bucket = runs_query(bucket_start, bucket_end, _FAILED, _IN_COMMUNE)
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in composite_pages(
        es,
        event_indices(indices, bucket_start, bucket_end),
        in_bucket,
        [PROVINCE_SOURCE, _WARD],
        {"last": last_hit},
        size=PAGE,
    ):
        province, ward = str(row["key"]["province"]), str(row["key"]["ward"])
        if province in model.sync_jobs:  # only a job's own history says what its runs do
            hits = row["last"]["hits"]["hits"]
            latest[(province, ward)] = hits[0]["_source"] if hits else {}
    if not latest:
        return []
    runs, failed = _recent_runs(es, indices, set(latest), bucket_end - lookback, bucket_end)
    found: list[FailingCommune] = []
    for (province, ward), src in sorted(latest.items()):
        streak, since, last_ok = _streak(
            runs.get(province, {}), failed.get((province, ward), set())
        )
        if streak < min_run or since is None:
            continue
        p0 = failure_share(model, province, ward)
        p = p0**streak
        if p >= alpha:
            continue
        sync = (src.get("soc") or {}).get("sync") or {}
        found.append(
            FailingCommune(
                key=Key(Level.COMMUNE, province, ward, SYNC_SERVICE),
                since=since,
                runs=streak,
                share=p0,
                p_value=p,
                last_ok=last_ok,
                error=(src.get("error") or {}).get("code"),
                reason=src.get("message"),
                run_id=sync.get("run_id"),
            )
        )
    return found


def _recent_runs(
    es: Elasticsearch,
    indices: Indices,
    communes: set[tuple[str, str]],
    start: datetime,
    end: datetime,
) -> tuple[dict[str, dict[str, datetime]], dict[tuple[str, str], set[str]]]:
    """Per province, every run (id -> time) in ``[start, end)``, and the runs each of
    ``communes`` failed: one composite over the provinces' summaries and those communes'
    failures."""
    provinces = sorted({p for p, _ in communes})
    wards = sorted({w for _, w in communes})
    which = {
        "bool": {
            "filter": [{"terms": {"locality.province.code": provinces}}],
            "should": [_SUMMARY, {"terms": {"locality.ward.code": wards}}],
            "minimum_should_match": 1,
        }
    }
    sources: list[dict[str, Any]] = [
        PROVINCE_SOURCE,
        {"ward": {"terms": {"field": "locality.ward.code", "missing_bucket": True}}},
        {"run": {"terms": {"field": "soc.sync.run_id"}}},
    ]
    runs: dict[str, dict[str, datetime]] = defaultdict(dict)
    failed: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in composite_pages(
        es,
        event_indices(indices, start, end),
        runs_query(start, end, which),
        sources,
        {"at": {"min": {"field": "@timestamp"}}, "bad": {"filter": _FAILED}},
        size=PAGE,
    ):
        province, ward, run = (
            str(row["key"]["province"]),
            row["key"]["ward"],
            str(row["key"]["run"]),
        )
        at = utc_of(row["at"]["value"])
        if run not in runs[province] or at < runs[province][run]:
            runs[province][run] = at
        if ward is not None and row["bad"]["doc_count"]:
            failed[(province, str(ward))].add(run)
    return runs, failed


def _streak(
    runs: dict[str, datetime], failed: set[str]
) -> tuple[int, datetime | None, datetime | None]:
    """``(failed runs in a row up to the newest run, first of them, the good run before)``;
    nothing when the newest run was not a failure (the commune recovered)."""
    streak, since = 0, None
    for run, at in sorted(runs.items(), key=lambda item: item[1], reverse=True):
        if run not in failed:
            return streak, since, at
        streak, since = streak + 1, at
    return streak, since, None
