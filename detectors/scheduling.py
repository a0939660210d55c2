"""``soc detect``: run the Sigma engine on APScheduler, holding the lease.

One interval job (``max_instances=1``, coalescing, jitter) ticks every ``SOC_DETECT_TICK``
seconds; a tick first takes or renews the lease in ``<prefix>-state`` and only the holder runs the
rules, so a second ``soc detect`` waits on standby and takes over when the lease expires. The rules'
own intervals and checkpoints decide what each tick evaluates. Must not contain detection logic.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.blocking import BlockingScheduler

from detectors.sigma import service
from detectors.sigma.runner import Engine, TickReport
from detectors.sigma.state import StateStore
from soc import heartbeat
from soc.config import Settings
from soc.es.client import make_client, wait_until_healthy
from soc.es.indices import Indices
from soc.es.templates import Layout, setup

log = logging.getLogger(__name__)


class Detect:
    """One ``soc detect`` process: its engine, its lease identity."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.es = make_client(settings)
        wait_until_healthy(self.es, timeout=60, settings=settings)
        setup(self.es, Indices(settings.index_prefix), layout=Layout.of(settings))
        self.rules = service.load(settings=settings)
        for error in self.rules.errors:
            log.error("rule skipped: %s", error)
        # One engine per set of searched indices (rules/sources.yaml); soc's own events first.
        self.engines: list[Engine] = service.engines(
            es=self.es, settings=settings, rules=list(self.rules.runnable)
        )
        self.engine = self.engines[0]
        self.store = StateStore(self.es, Indices(settings.index_prefix))
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def tick(self) -> TickReport | None:
        """One scheduler tick; None while another instance holds the lease."""
        ttl = timedelta(seconds=self.settings.detect_lease_ttl)
        if not self.store.acquire_lease(self.owner, ttl):
            log.info("standby: another soc detect holds the lease owner=%s", self.owner)
            return None
        report = _merged([engine.tick() for engine in self.engines])
        log.info(
            "tick searches=%d windows=%d alerts_created=%d alerts_existing=%d errors=%d "
            "behind=%d seconds=%.3f", report.searches, report.windows, report.alerts_created,
            report.alerts_existing, len(report.errors), sum(report.behind.values()),
            report.seconds,
        )  # fmt: skip
        for rule_id, error in report.errors.items():
            log.warning("rule failed rule=%s error=%s", rule_id, error)
        return report

    def run_forever(self) -> None:
        scheduler = BlockingScheduler(timezone="UTC")
        scheduler.add_job(self._safe_tick, "interval", seconds=self.settings.detect_tick,
                          max_instances=1, coalesce=True, jitter=1, id="sigma",
                          next_run_time=datetime.now(UTC))  # fmt: skip
        try:
            scheduler.start()
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.store.release_lease(self.owner)

    def _safe_tick(self) -> None:
        # A failing tick (Elasticsearch away) must not kill the scheduler: checkpoints did not
        # move, so the next tick re-runs the same windows.
        try:
            self.tick()
        except Exception:
            log.exception("tick failed; the windows will be retried")
        heartbeat.beat(self.settings.var_dir, "detect")  # `soc health detect`: the loop is alive


def _merged(reports: list[TickReport]) -> TickReport:
    total = TickReport()
    for r in reports:
        total.searches += r.searches
        total.windows += r.windows
        total.alerts_created += r.alerts_created
        total.alerts_existing += r.alerts_existing
        total.errors.update(r.errors)
        total.behind.update(r.behind)
        total.seconds += r.seconds
    return total
