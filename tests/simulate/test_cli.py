"""The ``soc simulate`` commands as a user runs them: real Elasticsearch, real files, clear
errors."""

from __future__ import annotations

import json
from pathlib import Path

from elasticsearch import Elasticsearch
from typer.testing import CliRunner

from soc.cli import app
from soc.config import Settings
from soc.es.indices import Indices

ROOT = Path(__file__).resolve().parents[2]


def env_of(settings: Settings) -> dict[str, str]:
    return {"SOC_ES_URL": settings.effective_es_url, "SOC_INDEX_PREFIX": settings.index_prefix,
            "SOC_INDEX_REPLICAS": "0", "SOC_VAR_DIR": str(settings.var_dir)}  # fmt: skip


def test_backfill_command_indexes_and_reports_per_day(
    es: Elasticsearch, settings: Settings, indices: Indices, tmp_path: Path
) -> None:
    labels = tmp_path / "labels.jsonl"
    args = ["simulate", "backfill", "--days", "0.1", "--end", "2026-11-23T12:00:00+07:00",
            "--province", "Lai Châu", "--scenario", str(ROOT / "scenarios" / "demo.yaml"),
            "--labels", str(labels)]  # fmt: skip
    shown = CliRunner().invoke(app, args, env=env_of(settings))
    assert shown.exit_code == 0, shown.output
    assert "2026-11-23" in shown.output
    assert "0 rejected" in shown.output
    count = int(es.count(index=indices.events)["count"])
    assert count > 100
    assert f"{count:,} indexed" in shown.output
    assert len(labels.read_text().splitlines()) == 14  # the file's labels, whatever the window


def test_live_command_runs_a_named_scenario_into_files(settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "live"
    args = ["simulate", "live", "--scenario", str(ROOT / "scenarios" / "web-attack.yaml"),
            "--province", "46", "--speed", "600", "--minutes", "3", "--out", str(out),
            "--labels", str(tmp_path / "labels.jsonl")]  # fmt: skip
    shown = CliRunner().invoke(app, args, env=env_of(settings))
    assert shown.exit_code == 0, shown.output
    assert "mock fleet" in shown.output
    manifest = json.loads((out / "manifest.json").read_text())["files"]
    assert manifest
    assert {item["province"] for item in manifest} == {"46"}
    targets = json.loads((tmp_path / "fleet-targets.json").read_text())["targets"]
    assert any(t["service"] == "vneid" for t in targets)
    [label] = [json.loads(x) for x in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert label["scenario_id"] == "live-web-attack-hue"


def test_unknown_scenario_names_what_exists(settings: Settings) -> None:
    shown = CliRunner().invoke(app, ["simulate", "live", "--scenario", "nope", "--minutes", "1"],
                               env=env_of(settings))  # fmt: skip
    assert shown.exit_code == 1
    assert "no scenario file 'nope'" in shown.output


def test_check_command_shows_each_scenario(tmp_path: Path) -> None:
    shown = CliRunner().invoke(app, ["simulate", "check", str(ROOT / "scenarios" / "demo.yaml")])
    assert shown.exit_code == 0, shown.output
    assert "web-attack-hue" in shown.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("scenarios:\n  - {id: x, kind: commune_silent, province: '12', start: '+1h', "
                   "duration: 1h}\n")  # fmt: skip
    shown = CliRunner().invoke(app, ["simulate", "check", str(bad)])
    assert shown.exit_code == 1
    assert "scenarios[0].ward" in shown.output
