"""``soc --help`` starts at once: the packages' groups load only when used.

And ``soc auth token`` finds the demo users of a running ``soc demo`` without any setting.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from soc.cli import app
from soc.config import Settings
from soc.subcommands import LAZY_GROUPS

runner = CliRunner()
HEAVY = ("sklearn", "scipy", "sigma", "elasticsearch", "pydantic_settings", "fastapi")


def test_help_imports_no_heavy_library() -> None:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "soc.cli", "--help"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines()}
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))
    for name in LAZY_GROUPS:
        assert name in proc.stdout


@pytest.mark.parametrize("argv", [["rules", "--help"], ["anomaly", "--help"], ["auth", "--help"],
                                  ["rules", "backtest", "--help"]])  # fmt: skip
def test_the_heavy_groups_help_imports_no_heavy_library(argv: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "soc.cli", *argv],
                          capture_output=True, text=True, check=True)  # fmt: skip
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines()}
    assert not imported & set(HEAVY), sorted(imported & set(HEAVY))
    assert "Usage:" in proc.stdout


@pytest.mark.parametrize("name", sorted(LAZY_GROUPS))
def test_listed_help_is_the_group_own_help(name: str) -> None:
    real = typer.main.get_group(LAZY_GROUPS[name].load())
    assert real.help == LAZY_GROUPS[name].help


def test_lazy_groups_run_and_show_their_own_help() -> None:
    result = runner.invoke(app, ["notify", "routes", "--help"])
    assert result.exit_code == 0, result.output
    assert "The email routes file." in result.output
    result = runner.invoke(app, ["auth", "--help"])
    assert "token" in result.output
    assert "--install-completion" not in result.output


def test_auth_token_knows_the_running_demo_users(settings: Settings) -> None:
    env = {"SOC_ES_URL": settings.es_url, "SOC_INDEX_PREFIX": settings.index_prefix,
           "SOC_VAR_DIR": str(settings.var_dir)}  # fmt: skip
    refused = runner.invoke(app, ["auth", "token", "--user", "analyst"], env=env)
    assert refused.exit_code == 1
    assert "soc demo" in refused.output
    password = Path(settings.var_dir) / "demo" / "demo-password"
    password.parent.mkdir(parents=True)
    password.write_text("demo-pass-xyz\n")
    result = runner.invoke(app, ["auth", "token", "--user", "analyst"], env=env)
    assert result.exit_code == 0, result.output
    assert "for analyst (analyst)" in result.output
    production = runner.invoke(app, ["auth", "token", "--user", "analyst"],
                               env={**env, "SOC_ENVIRONMENT": "production",
                                    "SOC_SECRET_KEY": "x" * 40})  # fmt: skip
    assert production.exit_code == 1
