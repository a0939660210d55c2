"""The ``soc`` command line as a user runs it: settings, errors, locality look-ups, setup."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from soc.cli import app
from soc.config import load_settings
from soc.errors import ConfigError

runner = CliRunner()


def test_config_show_masks_secrets() -> None:
    result = runner.invoke(
        app,
        ["config", "show"],
        env={
            "SOC_ES_URL": "https://es.example:9200",
            "SOC_ES_PASSWORD": "hunter2-secret",
            "SOC_ES_USERNAME": "soc",
        },
    )
    assert result.exit_code == 0, result.output
    assert "hunter2-secret" not in result.output
    assert "**********" in result.output
    assert "https://es.example:9200" in result.output


def test_invalid_setting_names_the_variable_not_the_value() -> None:
    with pytest.raises(ConfigError, match="SOC_INDEX_PREFIX"):
        load_settings(index_prefix="Bad Prefix!")
    with pytest.raises(ConfigError, match="SOC_ES_URL"):
        load_settings(es_url="es.example:9200")


def test_es_commands_refuse_to_manage_a_node_when_a_cluster_is_configured() -> None:
    result = runner.invoke(app, ["es", "start"], env={"SOC_ES_URL": "http://127.0.0.1:1"})
    assert result.exit_code == 1
    assert "SOC_ES_URL is set" in result.output


def test_localities_find_with_and_without_diacritics() -> None:
    for query in ("lai chau", "Lai Châu"):
        result = runner.invoke(app, ["localities", "find", query])
        assert result.exit_code == 0
        assert "12  Lai Châu  (38 wards)" in result.output


def test_localities_find_unknown_and_ambiguous_are_errors() -> None:
    unknown = runner.invoke(app, ["localities", "find", "Atlantis"])
    assert unknown.exit_code == 1
    assert "unknown province 'Atlantis'" in unknown.output
    ambiguous = runner.invoke(app, ["localities", "find", "--ward", "Tân Phú"])
    assert ambiguous.exit_code == 1
    assert "ambiguous" in ambiguous.output


def test_es_setup_against_a_cluster(es_url: str, prefix: str) -> None:
    env = {"SOC_ES_URL": es_url, "SOC_INDEX_PREFIX": prefix}
    first = runner.invoke(app, ["es", "setup"], env=env)
    assert first.exit_code == 0, first.output
    assert f"{prefix}-events" in first.output
    second = runner.invoke(app, ["es", "setup"], env=env)
    assert "templates written:   -" in second.output


def test_es_setup_when_nothing_answers_says_what_to_do() -> None:
    result = runner.invoke(
        app,
        ["es", "setup"],
        env={"SOC_ES_URL": "http://127.0.0.1:9", "SOC_ES_WAIT_TIMEOUT": "2"},
    )
    assert result.exit_code == 1
    assert "not healthy" in result.output
