"""docker-compose.yml: official Elasticsearch with security on, no secret in the file, and
accepted by ``docker compose config`` where a compose client is installed."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from soc.config import PROJECT_ROOT

COMPOSE = PROJECT_ROOT / "docker-compose.yml"


def test_elasticsearch_is_the_official_image_with_security_on() -> None:
    spec = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    es = spec["services"]["elasticsearch"]
    assert es["image"].startswith("elasticsearch:9.")
    assert es["environment"]["xpack.security.enabled"] == "true"
    assert es["environment"]["ELASTIC_PASSWORD"].startswith("${ELASTIC_PASSWORD:?")
    assert "mailcatcher" in spec["services"]
    for name in ("soc-api", "soc-detect", "soc-pipeline", "soc-collect"):
        assert name in spec["services"]


def test_no_secret_is_written_in_the_file() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for line in text.splitlines():
        if "PASSWORD" in line or "SECRET" in line:
            value = line.split(":", 1)[1].strip() if ":" in line else ""
            assert value == "" or value.startswith(("${", "-u elastic:$$")) or "$$" in line


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_config_accepts_the_file() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip(
            "no docker compose client on this machine (Debian: apt-get install docker-compose)"
        )
    env = dict(os.environ, ELASTIC_PASSWORD="example-only")
    done = subprocess.run(
        [*command, "-f", str(COMPOSE), "config", "-q"],
        capture_output=True, text=True, env=env, check=False, cwd=PROJECT_ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    secrets = {"ELASTIC_PASSWORD"}
    missing = subprocess.run(
        [*command, "-f", str(COMPOSE), "config", "-q"],
        capture_output=True, text=True, check=False, cwd=PROJECT_ROOT,
        env={k: v for k, v in os.environ.items() if k not in secrets},
    )  # fmt: skip
    assert missing.returncode != 0
    assert "ELASTIC_PASSWORD" in missing.stderr
