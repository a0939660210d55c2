"""The anomaly detector as a periodic job: one thin tick for whatever scheduler runs it.

A tick (1) retrains when the newest model is older than ``anomaly_retrain_hours`` (drift: the
baseline follows the last ``anomaly_training_days``), (2) picks up the newest model file, and
(3) calls :func:`detectors.anomaly.flows.run_due`, which evaluates every bucket completed since
its checkpoint exactly once, and (4) the live streaming detector
(:class:`detectors.anomaly.live.LiveDetector`: ≤5-minute buckets, its own checkpoint).
The caller holds the lease (``soc detect`` does) and wraps the tick
in its timing and error capture; a failed tick leaves the checkpoint where it was, so the next
one redoes the same buckets without doubling an alert. Must not contain detection logic.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from elasticsearch import Elasticsearch

from detectors.anomaly import flows, live
from detectors.anomaly.baseline import persistence
from detectors.anomaly.baseline.model import Model
from soc.alerts.models import Alert
from soc.config import Settings
from soc.errors import ModelNotFoundError, ModelVersionError
from soc.es.indices import Indices

log = logging.getLogger(__name__)


@dataclass
class AnomalyJob:
    """Holds the loaded model between ticks; reloads it when a newer file appears."""

    es: Elasticsearch
    indices: Indices
    settings: Settings
    model: Model | None = None
    path: Path | None = field(default=None)
    stream: live.LiveDetector | None = None

    def _current(self, now: datetime) -> Model:
        try:
            newest: Path | None = persistence.latest(self.settings.var_dir)
        except ModelNotFoundError:
            newest = None
        if newest is not None and newest != self.path:
            try:
                self.model, self.path = persistence.load(newest), newest
            except ModelVersionError as exc:
                # After an upgrade the old file is refused; a scheduled run heals by retraining.
                log.warning("retraining: %s", exc)
                self.model = None
        if self.model is None or now - self.model.trained_at > self.retrain_every:
            log.info(
                "training the anomaly model (none usable, or older than %s)", self.retrain_every
            )
            self.model, self.path = flows.train(self.es, self.indices, self.settings, now)
        return self.model

    @property
    def retrain_every(self) -> timedelta:
        return timedelta(hours=self.settings.anomaly_retrain_hours)

    def tick(self, now: datetime | None = None) -> list[Alert]:
        began, cpu = time.monotonic(), time.thread_time()
        now = now or datetime.now(UTC)
        model = self._current(now)
        alerts = flows.run_due(self.es, self.indices, self.settings, model=model, now=now)
        if self.settings.anomaly_stream:
            if self.stream is None:
                self.stream = live.LiveDetector(self.es, self.indices, self.settings)
            alerts += self.stream.tick(now)
        log.info(
            "anomaly tick alerts=%d model=%s seconds=%.2f cpu=%.2f",
            len(alerts),
            self.path,
            time.monotonic() - began,
            time.thread_time() - cpu,
        )
        return alerts
