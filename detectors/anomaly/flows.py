"""The anomaly detector's runs: train on history, evaluate windows, catch up from a checkpoint.

:func:`evaluate` is the scheduler's entry point: it scores every bucket of ``[window_start,
window_end)`` and writes one alert per deviating (locality, service, bucket) with
``op_type=create`` and the deterministic id of :class:`soc.alerts.models.Alert`, so evaluating a
window twice doubles nothing. :func:`run_due` keeps its own checkpoint document in
``<prefix>-state`` (kind ``checkpoint``, key ``anomaly``), advanced only after a bucket's alerts
are stored: after downtime it evaluates each missed bucket once, in order.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from elasticsearch import Elasticsearch, NotFoundError

from detectors.anomaly import (
    explain,
    explain_sync,
    probes,
    scoring,
    silence,
    syncjob,
    syncstop,
    unsynced,
    windows,
)
from detectors.anomaly.baseline import persistence
from detectors.anomaly.baseline.model import Hourly, Model, fit
from detectors.anomaly.features import (
    ALL_SERVICES,
    Clumps,
    Features,
    Key,
    Level,
    hourly_counts,
    totals,
)
from detectors.base import aligned_windows, floor, iso
from soc import timeutil
from soc.alerts import store
from soc.alerts.anomaly import AnomalyKind
from soc.alerts.models import Alert, Detector, Window
from soc.config import Settings
from soc.errors import ConfigError
from soc.es.indices import Indices
from soc.es.state import Entry, StateIndex, StateKind

log = logging.getLogger(__name__)

#: The checkpoint's entry in ``<prefix>-state`` (id ``anomaly.checkpoint:anomaly``, as before).
CHECKPOINT_KEY = "anomaly"
#: On a first run (no checkpoint) or after a very long stop, catch up at most this far back.
MAX_CATCH_UP = timedelta(days=1)
#: Steps one run evaluates at most (2 h of 5-minute steps, ~10-25 s): a catch-up after a stop
#: goes on over the next ticks instead of holding the job (and the live stream) for minutes.
MAX_STEPS_PER_RUN = 24
#: History over which training counts dossiers left unsynced.
SYNC_TRAINING = timedelta(days=1)


def bucket_of(settings: Settings) -> timedelta:
    minutes = settings.anomaly_bucket_minutes
    if 60 % minutes:
        raise ConfigError(
            f"SOC_ANOMALY_BUCKET_MINUTES: {minutes} must divide 60 (1, 5, 15, 30 ...)"
        )
    return timedelta(minutes=minutes)


# ------------------------------------------------------------------ training
def training_data(
    es: Elasticsearch,
    indices: Indices,
    start: datetime,
    end: datetime,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Hourly], list[Features], Clumps]:
    """Hourly counts (a day at a time, for progress), per-key totals and per-key clumps
    (all-services keys included) of ``[start, end)``."""
    hourly: list[Hourly] = []
    clumps: Clumps = {}
    day = start
    while day < end:
        stop = min(end, day + timedelta(days=1))
        for level in Level:
            hourly.extend(hourly_counts(es, indices, day, stop, level, clumps=clumps))
        if progress:
            progress(int((stop - day) / timedelta(hours=1)))
        day = stop
    rows = [row for level in Level for row in totals(es, indices, start, end, level)]
    return hourly + all_services(hourly), rows, clumps | all_services_clumps(clumps)


def all_services(hourly: list[Hourly]) -> list[Hourly]:
    """The all-services counts, summed here rather than asked of Elasticsearch a second time."""
    sums: dict[tuple[Key, datetime], int] = defaultdict(int)
    for key, hour, count in hourly:
        sums[(Key(key.level, key.province, key.ward, ALL_SERVICES), hour)] += count
    return [(key, hour, count) for (key, hour), count in sums.items()]


def all_services_clumps(clumps: Clumps) -> Clumps:
    """The all-services keys' clumps: their services' summed (a client of two services in one
    hour counts twice, so the clump size is never overstated)."""
    sums: Clumps = {}
    for key, (events, count) in clumps.items():
        tally = sums.setdefault(Key(key.level, key.province, key.ward, ALL_SERVICES), [0, 0])
        tally[0] += events
        tally[1] += count
    return sums


def train(
    es: Elasticsearch,
    indices: Indices,
    settings: Settings,
    end: datetime,
    *,
    days: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[Model, Path]:
    """Fit a model on the ``days`` (default: the setting) before ``end``, and save it."""
    end = floor(end, timedelta(hours=1))
    start = end - timedelta(days=days or settings.anomaly_training_days)
    hourly, rows, clumps = training_data(es, indices, start, end, progress)
    model = fit(hourly, rows, start, end, clumps)
    probed = probes.totals(es, indices, start, end)
    # The last day is enough to learn how often a dossier is left unsynced past the grace.
    dossiers, lost = unsynced.training_share(
        unsynced.tally(es, indices, end, window=min(SYNC_TRAINING, end - start))
    )
    runs = syncjob.learn(es, indices, start, end)
    model = replace(
        model,
        probes=probed,
        probe_share=probes.national_share(probed),
        sync_dossiers=dossiers,
        sync_unsynced=lost,
        sync_jobs=runs.jobs,
        sync_failures=runs.failures,
        sync_failure_share=runs.share,
    )
    path = persistence.save(model, settings.var_dir)
    log.info("trained anomaly model: %d series, %s", len(model.baselines), path)
    return model, path


# ------------------------------------------------------------------ scoring
def _previous_since(es: Elasticsearch, indices: Indices, start: datetime) -> dict[str, str]:
    """``since`` of the anomaly alerts of the bucket just before, by group: deviations chain."""
    query = {
        "bool": {
            "filter": [
                {"term": {"detector": Detector.ANOMALY.value}},
                {"term": {"window.end": iso(start)}},
            ]
        }
    }
    try:
        answer = es.search(
            index=indices.alerts,
            query=query,
            size=10000,
            source_includes=["group", "alert.explanation.since", "rule.id"],
        )
    except NotFoundError:
        return {}
    found: dict[str, str] = {}
    for hit in answer["hits"]["hits"]:
        src = hit["_source"]
        since = src.get("alert", {}).get("explanation", {}).get("since")
        if since:
            found[_chain_key(src["rule"]["id"], src.get("group", {}))] = since
    return found


def _chain_key(rule_id: str, group: dict[str, str]) -> str:
    return rule_id + "|" + "|".join(f"{k}={group[k]}" for k in sorted(group))


def bucket_alerts(
    es: Elasticsearch,
    indices: Indices,
    model: Model,
    settings: Settings,
    window: Window,
    created: datetime,
) -> list[Alert]:
    """Score one bucket: deviations of the keys with traffic, silences, failing health probes,
    dossiers left unsynced and the sync jobs' runs."""
    start, end = window.start, window.end
    step, long = end - start, windows.long_window(settings, end - start)
    rows = windows.rows(es, indices, end - long, end, step)
    judged = windows.judge_step(model, rows, end, step, long, settings)
    chained = _previous_since(es, indices, start)
    alerts: list[Alert] = []
    for j in judged:
        kind = scoring.primary(j.deviations).kind
        since_text = chained.get(_chain_key(kind.rule_id, explain.group(j.row.key)))
        since = timeutil.parse(since_text) if since_text else j.start
        # The alert's window is the one judged (the step, or the long window ending at it).
        judged_window = Window(start=j.start, end=end)
        alerts.append(
            explain.deviation_alert(
                j.row, j.deviations, j.score, judged_window, since, j.baseline_source, created
            )
        )
    lookback = timedelta(minutes=settings.anomaly_silence_lookback_minutes)
    outages, collectors = silence.find(
        es, indices, model, start, end, lookback=lookback, alpha=settings.anomaly_alpha
    )
    alpha = settings.anomaly_alpha
    for s in outages:
        score = scoring.score([_as_deviation(s.p_value)], alpha)
        alerts.append(explain.silence_alert(s, score, window, created))
    for c in collectors:
        alerts.append(explain.collector_alert(c, 1.0, window, created))
    down = probes.find(
        es, indices, model.probes, model.probe_share, start, end, alpha=settings.anomaly_alpha
    )
    for f in down:
        score = scoring.score([_as_deviation(f.p_value)], alpha)
        alerts.append(explain.probe_alert(f, score, window, created))
    share = unsynced.expected_share(model.sync_dossiers, model.sync_unsynced)
    for b in unsynced.find(es, indices, share, start, end, alpha=alpha):
        score = scoring.score([_as_deviation(b.p_value)], alpha)
        alerts.append(explain_sync.unsynced_alert(b, score, window, created))
    for commune in syncjob.find_failing(es, indices, model, start, end, alpha=alpha):
        score = scoring.score([_as_deviation(commune.p_value)], alpha)
        alerts.append(explain_sync.sync_failing_alert(commune, score, window, created))
    for job in syncstop.find_stopped(es, indices, model, start, end, alpha=alpha):
        score = scoring.score([_as_deviation(job.p_value)], alpha)
        alerts.append(explain_sync.sync_stopped_alert(job, score, window, created))
    return alerts


def _as_deviation(p_value: float) -> scoring.Deviation:
    return scoring.Deviation("count", AnomalyKind.OUTAGE, "events", 0, 0, 0, 0, p_value)


def evaluate(
    es: Elasticsearch,
    indices: Indices,
    window_start: datetime,
    window_end: datetime,
    *,
    model: Model,
    settings: Settings,
    now: datetime | None = None,
) -> list[Alert]:
    """Score every complete bucket of the window and store its alerts; idempotent per window.

    Buckets are aligned on the epoch, so a window evaluated as one piece or bucket by bucket
    yields the same alerts with the same ids.
    """
    bucket = bucket_of(settings)
    created_at = now or datetime.now(UTC)
    alerts: list[Alert] = []
    for w in aligned_windows(window_start, window_end, bucket):
        found = bucket_alerts(es, indices, model, settings, w.for_alert(), created_at)
        store.create(es, indices, found, refresh=True)
        alerts.extend(found)
    return alerts


# ------------------------------------------------------------------ checkpoint
def done_until(es: Elasticsearch, indices: Indices) -> datetime | None:
    found = StateIndex(es, indices).get(StateKind.ANOMALY_CHECKPOINT, CHECKPOINT_KEY)
    return timeutil.parse_optional(found.data.get("done_until")) if found else None


def save_checkpoint(es: Elasticsearch, indices: Indices, until: datetime, alerts: int) -> None:
    data = {"done_until": iso(until), "alerts": alerts}
    entry = Entry(StateKind.ANOMALY_CHECKPOINT, CHECKPOINT_KEY, data, datetime.now(UTC))
    StateIndex(es, indices).put(entry, refresh=True)


def run_due(
    es: Elasticsearch,
    indices: Indices,
    settings: Settings,
    *,
    model: Model,
    now: datetime | None = None,
) -> list[Alert]:
    """Evaluate the buckets completed (plus lateness) since the checkpoint, one at a time, at
    most :data:`MAX_STEPS_PER_RUN` (the next run goes on from the checkpoint)."""
    bucket = bucket_of(settings)
    now = now or datetime.now(UTC)
    ready = floor(now - timedelta(seconds=settings.anomaly_lateness_seconds), bucket)
    start = done_until(es, indices) or ready - bucket
    start = max(start, ready - MAX_CATCH_UP)
    alerts: list[Alert] = []
    for w in list(aligned_windows(start, ready, bucket))[:MAX_STEPS_PER_RUN]:
        found = evaluate(es, indices, w.start, w.end, model=model, settings=settings, now=now)
        save_checkpoint(es, indices, w.end, len(found))
        alerts.extend(found)
    return alerts
