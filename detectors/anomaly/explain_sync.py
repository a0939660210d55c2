"""Alerts about the dossiers' way to the national portal: dossiers left unsynced, a commune the
sync job keeps failing, a sync job that stopped. Built like :mod:`detectors.anomaly.explain`'s
(observed vs expected, since when), from its vocabulary; no I/O here.
"""

from __future__ import annotations

from datetime import datetime

from detectors.anomaly.explain import (
    TITLES,
    duration,
    number,
    p_value,
    place,
    service_alert,
    where_text,
)
from detectors.anomaly.syncjob import MIN_RUN as MIN_SYNC_RUN
from detectors.anomaly.syncjob import FailingCommune
from detectors.anomaly.syncstop import StoppedJob
from detectors.anomaly.unsynced import Backlog
from detectors.base import iso
from soc.alerts.anomaly import (
    AnomalyKind,
    ScoredFeature,
    SyncFailingExplanation,
    SyncStoppedExplanation,
    UnsyncedExplanation,
)
from soc.alerts.models import Alert, Window


def unsynced_alert(b: Backlog, score: float, window: Window, created: datetime) -> Alert:
    """Dossiers changed in the one-stop shop that the national portal never received."""
    where = place(b.key)
    t = b.tally
    oldest = iso(t.oldest) if t.oldest else None
    explanation = UnsyncedExplanation(
        level=b.key.level.value,
        since=oldest,
        features=[
            ScoredFeature(
                feature="unsynced_dossiers",
                label="dossiers changed and not synchronised past the grace",
                unit="dossiers",
                observed=t.unsynced,
                expected=number(b.expected_share * t.dossiers),
                band=[0, None],
                events=t.dossiers,
                p_value=p_value(b.p_value),
            )
        ],
        dossiers_changed=t.dossiers,
        oldest_unsynced=oldest,
        newest_unsynced=iso(t.newest) if t.newest else None,
    )
    return service_alert(
        AnomalyKind.UNSYNCED_DOSSIERS,
        b.key,
        where,
        title=f"{TITLES[AnomalyKind.UNSYNCED_DOSSIERS]}: {where_text(where)}",
        summary=(
            f"{t.unsynced} of the {t.dossiers} dossiers that the one-stop shop of "
            f"{where_text(where)} received, processed or returned have not reached the national "
            f"portal (the oldest changed at {oldest}); normally {b.expected_share:.2%} are "
            f"still unsynchronised after the grace (p = {b.p_value:.1g}). Check the sync job "
            "and its connection for these communes."
        ),
        count=t.unsynced,
        score=score,
        explanation=explanation,
        window=window,
        created=created,
    )


def _runs_feature(
    feature: str, label: str, runs: int, share: float, events: int, p: float
) -> ScoredFeature:
    """Sync runs in a row that failed or never came, against the share of runs that usually do;
    the band allows fewer than the runs that alert (``syncjob.MIN_RUN``)."""
    return ScoredFeature(feature=feature, label=label, unit="runs", observed=runs,
                         expected=number(share), band=[0, MIN_SYNC_RUN - 1], events=events,
                         p_value=p_value(p))  # fmt: skip


def sync_failing_alert(f: FailingCommune, score: float, window: Window, created: datetime) -> Alert:
    """A commune the province's sync job failed to sync ``runs`` runs in a row."""
    where = place(f.key)
    label, p = "sync runs in a row that failed for the commune", f.p_value
    last_ok = f"the last run that synced it was at {iso(f.last_ok)}" if f.last_ok else (
        "no run synced it within the look-back"
    )  # fmt: skip
    explanation = SyncFailingExplanation(
        level=f.key.level.value,
        since=iso(f.since),
        last_ok=iso(f.last_ok) if f.last_ok else None,
        last_error=f.error,
        last_reason=f.reason,
        last_run_id=f.run_id,
        features=[_runs_feature("sync_failures_in_a_row", label, f.runs, f.share, f.runs, p)],
    )
    reason = f" ({f.error}: {f.reason})" if f.error and f.reason else (
        f" ({f.error or f.reason})" if f.error or f.reason else ""
    )  # fmt: skip
    return service_alert(
        AnomalyKind.SYNC_FAILING,
        f.key,
        where,
        title=f"{TITLES[AnomalyKind.SYNC_FAILING]}: {where_text(where)}",
        summary=(
            f"The sync job of {where.province_name} to the national portal has failed for "
            f"{where_text(where)} in {f.runs} runs in a row since {iso(f.since)}{reason}; "
            f"{last_ok}. Normally {f.share:.2%} of its runs fail for this commune, so "
            f"{f.runs} in a row are improbable (p = {f.p_value:.1g}): its dossiers are not "
            "reaching the national portal. Check the commune's connection to the sync job."
        ),
        count=f.runs,
        score=score,
        explanation=explanation,
        window=window,
        created=created,
    )


def sync_stopped_alert(s: StoppedJob, score: float, window: Window, created: datetime) -> Alert:
    """A province's sync job that wrote no run record for ``missed`` of its periods."""
    where = place(s.key)
    label = "sync runs due with no run record"
    since = s.last_run or window.end - s.missed * s.period
    silent = duration(window.end - since)
    last = f"its last run record was at {iso(s.last_run)}" if s.last_run else (
        f"no run record at all for at least {silent}"
    )  # fmt: skip
    heard = (
        f" Its collector ({', '.join(s.collectors)}) is alive, so the job itself stopped."
        if s.collectors
        else " No collector is known for its records."
    )
    explanation = SyncStoppedExplanation(
        level=s.key.level.value,
        since=iso(since),
        since_known=s.last_run is not None,
        last_run=iso(s.last_run) if s.last_run else None,
        period_minutes=number(s.period.total_seconds() / 60),
        collectors=list(s.collectors),
        collector_heard=bool(s.collectors),
        features=[_runs_feature("sync_runs_missing", label, s.missed, s.share, 0, s.p_value)],
    )
    return service_alert(
        AnomalyKind.SYNC_JOB_STOPPED,
        s.key,
        where,
        title=f"{TITLES[AnomalyKind.SYNC_JOB_STOPPED]}: {where_text(where)}",
        summary=(
            f"The sync job of {where_text(where)} to the national portal usually runs every "
            f"{duration(s.period)}; {last}, so {s.missed} runs are missing (normally "
            f"{s.share:.2%} of its runs are; p = {s.p_value:.1g}). No dossier of the "
            f"province reaches the national portal until it runs again.{heard}"
        ),
        count=0,
        score=score,
        explanation=explanation,
        window=window,
        created=created,
    )
