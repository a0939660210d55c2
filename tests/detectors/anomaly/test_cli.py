"""``soc anomaly train`` and ``soc anomaly score`` against the real store."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from detectors.anomaly.baseline.model import MODEL_VERSION
from soc.cli import app
from tests.detectors.anomaly.conftest import World


def _env(world: World, var_dir: Path) -> dict[str, str]:
    return {"SOC_ES_URL": str(world.settings.es_url), "SOC_INDEX_PREFIX": world.indices.prefix,
            "SOC_VAR_DIR": str(var_dir), "SOC_LOG_LEVEL": "WARNING"}  # fmt: skip


def test_train_then_score_a_past_period(world: World, tmp_path: Path) -> None:
    runner, env = CliRunner(), _env(world, tmp_path)
    missing = runner.invoke(app, ["anomaly", "score", "--start", "2026-11-16T02:00:00Z",
                                  "--end", "2026-11-16T02:30:00Z"], env=env)  # fmt: skip
    assert missing.exit_code == 1
    assert "no trained anomaly model" in missing.output
    trained = runner.invoke(app, ["anomaly", "train", "--end", "2026-11-16T00:00:00Z"], env=env)
    assert trained.exit_code == 0, trained.output
    assert f"{len(world.model.baselines)} locality/service series" in trained.output
    assert list((tmp_path / "models").glob(f"anomaly-v{MODEL_VERSION}-*.json"))
    scored = runner.invoke(app, ["anomaly", "score", "--start", "2026-11-16T09:00:00+07:00",
                                 "--end", "2026-11-16T09:30:00+07:00"], env=env)  # fmt: skip
    assert scored.exit_code == 0, scored.output
    assert "6 buckets scored" in scored.output  # 5-minute steps
    assert "anomaly-error-storm" in scored.output
    bad = runner.invoke(app, ["anomaly", "score", "--start", "yesterday", "--end", "now"], env=env)
    assert bad.exit_code == 1
    assert "--start 'yesterday': not an ISO 8601 time" in bad.output
