"""``soc pipeline``: alerts → incidents → emails, plus the anomaly model, on a schedule.

``soc detect`` runs the Sigma rules; the steps after it (grouping alerts into incidents, closing
the incidents whose episode is over, the notifier's outbox round, the anomaly model's tick) are
periodic jobs that their own packages expose as plain functions
(:func:`soc.incidents.grouping.group_pending`, :func:`soc.incidents.episodes.close_recovered`,
:func:`soc.notify.scheduled.tick`, :class:`detectors.anomaly.scheduled.AnomalyJob`).
This module runs them on one APScheduler so that
one process carries the whole path after the Sigma rules (production runs it beside
``soc detect``; the demo starts it as ``soc demo worker``). Every job is idempotent
(deterministic ids, compare-and-set, checkpoints), so a crash or a second worker doubles nothing.

It must not hold any grouping, notification or detection logic: only the schedule and the wrapping
(one place that logs a failed round and lets the next one retry). ``soc incidents group`` (below)
is the same round by hand for operators: grouping, recovered episodes, then the status board's
changes. It composes ``soc.incidents`` and ``soc.status``, so it lives here, in the top layer.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

import typer
from apscheduler.schedulers.blocking import BlockingScheduler
from elasticsearch import Elasticsearch

from soc import heartbeat
from soc.config import Settings
from soc.es.client import make_client, wait_until_healthy
from soc.es.indices import Indices
from soc.es.templates import Layout, setup

log = logging.getLogger(__name__)

#: The live streaming detector's 5-minute buckets are due within 60 s of their end, so the job
#: ticks every 15 s; a tick with nothing due costs a state read (the 15-minute model's too).
ANOMALY_EVERY = 15.0
#: How often open incidents are checked for a recovery (quiet, health probe up).
RECOVER_EVERY = 10.0


def _guarded(name: str, job: Callable[[], object]) -> Callable[[], None]:
    """Wrap a job once: time it, and log a failure instead of killing the scheduler."""

    def run() -> None:
        began = time.monotonic()
        try:
            job()
        except Exception:
            # Elasticsearch away, SMTP down...: the job's state is in Elasticsearch, so the next
            # round simply redoes what this one did not finish.
            log.exception("job failed job=%s; the next round retries", name)
            return
        log.debug("job done job=%s seconds=%.3f", name, time.monotonic() - began)

    return run


def build_scheduler(settings: Settings, *, anomaly: bool = True) -> BlockingScheduler:
    """The worker's scheduler with its jobs registered (not started)."""
    from soc.incidents.episodes import close_recovered
    from soc.incidents.grouping import group_pending
    from soc.notify import scheduled as notify_jobs
    from soc.notify.flows import Notifier

    es = make_client(settings)
    wait_until_healthy(es, timeout=settings.es_start_timeout, settings=settings)
    indices = Indices(settings.index_prefix)
    setup(es, indices, layout=Layout.of(settings))
    scheduler = BlockingScheduler(timezone="UTC")
    tick = settings.demo_pipeline_tick

    def group() -> None:
        heartbeat.beat(settings.var_dir, "pipeline")  # `soc health pipeline`: the loop is alive
        grouped = group_pending(es, indices, settings)
        if grouped:
            log.info("grouped alerts=%d", grouped)

    def recover() -> None:
        closed = close_recovered(es, indices, settings, datetime.now(UTC))
        if closed:
            log.info("episodes over: resolved incidents=%d", closed)

    scheduler.add_job(_guarded("group", group), "interval", seconds=tick, id="group",
                      max_instances=1, coalesce=True, jitter=min(1.0, tick / 5),
                      next_run_time=datetime.now(UTC))  # fmt: skip
    scheduler.add_job(_guarded("recover", recover), "interval", seconds=max(tick, RECOVER_EVERY),
                      id="recover", max_instances=1, coalesce=True, jitter=1.0)  # fmt: skip
    scheduler.add_job(_guarded("next-day-index", lambda: _next_day(es, indices)), "interval",
                      hours=1, id="next-day-index", max_instances=1, coalesce=True, jitter=60,
                      next_run_time=datetime.now(UTC))  # fmt: skip
    notifier = Notifier.from_settings(es, settings)
    notify_jobs.register(scheduler, notifier, every_seconds=tick)
    if anomaly:
        _add_anomaly(scheduler, settings, es, indices)
    return scheduler


def _next_day(es: Elasticsearch, indices: Indices) -> None:
    """Tomorrow's event index, made ahead so its replica is started before its first event."""
    from soc.es import retention

    if retention.create_next_day(es, indices, datetime.now(UTC).date()):
        log.info("created tomorrow's event index")


def _add_anomaly(scheduler: BlockingScheduler, settings: Settings, es: Elasticsearch,
                 indices: Indices) -> None:  # fmt: skip
    try:
        from detectors.anomaly.scheduled import AnomalyJob
    except ImportError as exc:  # the anomaly package is optional for the rest of the path
        log.warning("anomaly model not run: %s", exc)
        return
    job = AnomalyJob(es, indices, settings)
    scheduler.add_job(_guarded("anomaly", job.tick), "interval", seconds=ANOMALY_EVERY,
                      id="anomaly", max_instances=1, coalesce=True, jitter=5)  # fmt: skip


def run_worker(settings: Settings, *, anomaly: bool = True) -> None:
    """Run until SIGTERM/SIGINT (the supervisor sends SIGTERM)."""
    import signal

    scheduler = build_scheduler(settings, anomaly=anomaly)

    def stop(signum: int, frame: object) -> None:
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    log.info("pipeline: grouping and notify every %.1f s, anomaly every %.0f s",
             settings.demo_pipeline_tick, ANOMALY_EVERY)  # fmt: skip
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        scheduler.start()


incidents_app = typer.Typer(help="Incidents: group alerts into incidents.", no_args_is_help=True)


@incidents_app.command("group")
def group_command(
    every: Annotated[float, typer.Option(min=0, help="Repeat every N seconds (0: once).")] = 0,
) -> None:
    """Group pending alerts into incidents."""
    from soc import logs
    from soc.auth.models import Role, User
    from soc.config import load_settings
    from soc.errors import SocError
    from soc.incidents.episodes import close_recovered
    from soc.incidents.grouping import group_pending
    from soc.status import service as status

    board_user = User(name="soc-status", role=Role.ADMIN)  # the whole country's board
    settings = load_settings()
    logs.configure(settings.log_level)
    try:
        es = make_client(settings)
        wait_until_healthy(es, timeout=settings.es_wait_timeout, settings=settings)
        indices = Indices(settings.index_prefix)
        setup(es, indices, layout=Layout.of(settings))
        while True:
            grouped = group_pending(es, indices, settings)
            now = datetime.now(UTC)
            recovered = close_recovered(es, indices, settings, now)
            current = status.board(
                es, indices, user=board_user, now=now, probe_window=settings.status_probe_window
            )
            changed = status.record_changes(es, indices, current, now)
            typer.echo(
                f"grouped {grouped} alert(s); {recovered} recovered; {changed} status change(s)"
            )
            if not every:
                return
            time.sleep(every)
    except SocError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
