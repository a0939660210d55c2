"""The periodic job: trains when there is no model, reuses a fresh one, advances its checkpoint."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from elasticsearch import Elasticsearch

from detectors.anomaly.baseline import persistence
from detectors.anomaly.flows import done_until
from detectors.anomaly.scheduled import AnomalyJob
from tests.detectors.anomaly.conftest import T, World


def test_tick_trains_once_then_reuses_the_model(
    es: Elasticsearch, world: World, tmp_path: Path
) -> None:
    settings = world.settings.model_copy(update={"var_dir": tmp_path})
    job = AnomalyJob(es, world.indices, settings)
    job.tick(now=T + timedelta(hours=5))
    first = persistence.latest(tmp_path)
    assert job.path == first
    assert job.model is not None
    assert set(job.model.baselines) == set(world.model.baselines)
    assert done_until(es, world.indices) == T + timedelta(hours=4, minutes=45)
    job.tick(now=T + timedelta(hours=5, minutes=15))
    assert persistence.latest(tmp_path) == first  # not retrained: the model is fresh
    assert done_until(es, world.indices) == T + timedelta(hours=5)
