"""Models are saved as versioned files, load back identical, and an older version fails clearly."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from elasticsearch import Elasticsearch

from detectors.anomaly.baseline import persistence
from detectors.anomaly.baseline.model import MODEL_VERSION
from detectors.anomaly.flows import evaluate
from soc.errors import ModelNotFoundError, ModelVersionError
from tests.detectors.anomaly.conftest import T, World


def test_saved_model_loads_back_identical(es: Elasticsearch, world: World) -> None:
    path = world.model_path
    assert path.parent == world.settings.var_dir / "models"
    assert path.name.startswith(f"anomaly-v{MODEL_VERSION}-")
    loaded = persistence.load(path)
    assert loaded == world.model
    assert persistence.latest(world.settings.var_dir) == path
    # The loaded model judges exactly as the trained one did.
    start, end = T + timedelta(hours=2), T + timedelta(hours=2, minutes=15)
    settings = world.settings
    ids = {
        a.id for a in evaluate(es, world.indices, start, end, model=world.model, settings=settings)
    }
    again = {a.id for a in evaluate(es, world.indices, start, end, model=loaded, settings=settings)}
    assert ids
    assert ids == again


def test_older_model_version_is_refused(world: World, tmp_path: Path) -> None:
    data = orjson.loads(world.model_path.read_bytes())
    data["version"] = MODEL_VERSION - 1
    old = tmp_path / "models" / f"anomaly-v{MODEL_VERSION - 1}-20250101T000000000000Z.json"
    old.parent.mkdir()
    old.write_bytes(orjson.dumps(data))
    with pytest.raises(
        ModelVersionError,
        match=rf"version {MODEL_VERSION - 1}, but this soc reads version {MODEL_VERSION}",
    ) as err:
        persistence.load_latest(tmp_path)
    assert str(old) in str(err.value)
    assert "soc anomaly train" in str(err.value)


def test_damaged_or_missing_models_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="train one with `soc anomaly train`"):
        persistence.load_latest(tmp_path)
    bad = tmp_path / "models" / "anomaly-v1-x.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    with pytest.raises(ModelVersionError, match="not a model file"):
        persistence.load(bad)
    bad.write_text(f'{{"format": "soc-anomaly-model", "version": {MODEL_VERSION}}}')
    with pytest.raises(ModelVersionError, match="damaged model file"):
        persistence.load(bad)
