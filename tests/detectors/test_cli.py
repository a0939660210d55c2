"""``soc rules …`` and ``soc detect run --once`` end to end against the real Elasticsearch."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from elasticsearch import Elasticsearch
from typer.testing import CliRunner

from detectors.sigma.compiler import load_rules
from detectors.sigma.pipeline import RULES_DIR
from detectors.sigma.state import StateStore
from soc.cli import app
from soc.es.indices import Indices

runner = CliRunner()


def _env(es_url: str, prefix: str, **extra: str) -> dict[str, str]:
    return {"SOC_ES_URL": es_url, "SOC_INDEX_PREFIX": prefix, "SOC_LOG_LEVEL": "WARNING", **extra}


def test_validate_passes_on_the_shipped_rules(es_url: str, prefix: str) -> None:
    result = runner.invoke(app, ["rules", "validate"], env=_env(es_url, prefix))
    assert result.exit_code == 0, result.output
    assert "0 with errors" in result.output


def test_validate_names_the_broken_file_and_line(es_url: str, prefix: str, tmp_path: Path) -> None:
    shutil.copytree(RULES_DIR, tmp_path, dirs_exist_ok=True)
    broken = (
        (tmp_path / "otp" / "send-failure.yml")
        .read_text()
        .replace("event.action: otp-send", "event.actoin: otp-send")
    )
    (tmp_path / "otp" / "send-failure.yml").write_text(broken)
    result = runner.invoke(
        app, ["rules", "validate"], env=_env(es_url, prefix, SOC_RULES_DIR=str(tmp_path))
    )
    assert result.exit_code == 1
    assert "otp/send-failure.yml:13: unknown field 'event.actoin'" in result.output
    shipped = len(load_rules().rules)
    assert f"{shipped - 2} rules loaded" in result.output, "all but the rule and its correlation"


def test_rules_test_convert_and_detect_once(es: Elasticsearch, es_url: str, prefix: str) -> None:
    env = _env(es_url, prefix)
    tested = runner.invoke(app, ["rules", "test", "probe_service_down"], env=env)
    assert tested.exit_code == 0, tested.output
    shipped = load_rules().get("probe_service_down").tests
    assert shipped is not None
    assert tested.output.count("ok ") == len(shipped.fire) + len(shipped.quiet) >= 4
    converted = runner.invoke(app, ["rules", "convert", "web_scanner_user_agent"], env=env)
    assert converted.output.startswith("event.category:web AND (user_agent.original:(*sqlmap*")
    first = runner.invoke(app, ["detect", "run", "--once"], env=env)
    assert first.exit_code == 0, first.output
    assert "0 rule errors" in first.output
    StateStore(es, Indices(prefix)).release_lease("nobody")
    store = StateStore(es, Indices(prefix))
    held = es.get(index=Indices(prefix).state, id="detect.lease:detect")["_source"]["owner"]
    assert store.acquire_lease(held, timedelta(minutes=5)), "renew as the first instance"
    second = runner.invoke(app, ["detect", "run", "--once"], env=env)
    assert "standby" in second.output
