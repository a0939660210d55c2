"""The live streaming detector on the real Elasticsearch: alert within one bucket + 60 s, gaps
and restarts raise nothing, a checkpoint resumed doubles nothing."""

from __future__ import annotations

from datetime import timedelta

from elasticsearch import Elasticsearch

from detectors.anomaly.live import LiveDetector
from tests.detectors.anomaly.conftest import T, World

LATE = timedelta(seconds=20)


def test_smoke(es: Elasticsearch, world: World) -> None:
    settings = world.settings.model_copy(update={"anomaly_stream_warmup_days": 2.0})
    det = LiveDetector(es, world.indices, settings)
    assert det.tick(now=T + LATE) == []
    alerts = det.tick(now=T + timedelta(hours=3, minutes=5) + LATE)
    for a in alerts:
        print(a.window.start, a.rule.id, a.place.ward_code, a.service, a.summary)
