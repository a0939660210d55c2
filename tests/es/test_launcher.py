"""The managed node: start, second start, status, stop, reset, and failures that never hang."""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from soc.errors import JavaNotFoundError, LauncherError, PortInUseError, StartupFailedError
from soc.es.java import find_java
from soc.es.launcher import LocalNode
from tests.conftest import new_run_dir, node_settings


@pytest.fixture
def run_dir() -> Iterator[Path]:
    path = new_run_dir("launcher")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _fake_jdk(root: Path, version: str, modules: str) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "java").write_text("#!/bin/sh\n", encoding="utf-8")
    (root / "release").write_text(
        f'JAVA_VERSION="{version}"\nMODULES="{modules}"\n', encoding="utf-8"
    )
    return root


def test_java_without_jlink_is_refused_with_the_reason(tmp_path: Path) -> None:
    slim = _fake_jdk(tmp_path / "slim", "25.0.2", "java.base java.logging")
    with pytest.raises(JavaNotFoundError, match=r"lacks jdk\.jlink") as caught:
        find_java("9.5.0", explicit=slim)
    assert "SOC_ES_JAVA_HOME" in str(caught.value)
    old = _fake_jdk(tmp_path / "old", "17.0.15", "java.base jdk.jlink")
    with pytest.raises(JavaNotFoundError, match="too old"):
        find_java("9.5.0", explicit=old)
    full = _fake_jdk(tmp_path / "full", "21.0.8", "java.base jdk.jlink")
    assert find_java("9.5.0", explicit=full).major == 21


def test_missing_java_fails_fast_without_starting_anything(run_dir: Path) -> None:
    node = LocalNode(node_settings(run_dir, es_java_home=run_dir / "no-such-jdk"))
    with pytest.raises(JavaNotFoundError):
        node.start()
    assert node.pid() is None


@pytest.mark.slow
def test_start_status_second_start_port_taken_reset_stop(run_dir: Path) -> None:
    settings = node_settings(run_dir)
    node = LocalNode(settings)
    assert not node.status().running
    assert node.start() is True
    try:
        status = node.status()
        assert status.running
        assert status.health in ("green", "yellow")
        assert status.pid == node.pid()
        assert node.start() is False  # already running: starts nothing
        assert node.pid() == status.pid

        # another node wanting the same port is refused before it launches anything
        other = LocalNode(node_settings(new_run_dir("other"), es_http_port=settings.es_http_port))
        with pytest.raises(PortInUseError, match=str(settings.es_http_port)):
            other.start()
        assert other.pid() is None

        # reset wipes the data
        (node.data_dir / "marker").write_text("x", encoding="utf-8")
        node.reset()
        assert not node.status().running
        assert not node.data_dir.exists()
    finally:
        node.stop()
    assert node.stop() is False
    assert not node.status().running
    assert (node.log_dir.parent / "logs").parent == node.node_dir


@pytest.mark.slow
def test_a_node_that_cannot_start_reports_why_with_its_log(run_dir: Path) -> None:
    # 1 MiB of heap: the JVM refuses at once, and soc must say so instead of waiting.
    node = LocalNode(node_settings(run_dir, es_heap="1m", es_start_timeout=90))
    began = time.monotonic()
    with pytest.raises(StartupFailedError) as caught:
        node.start()
    assert time.monotonic() - began < 60
    assert "exited with code" in str(caught.value)
    assert caught.value.log_tail.strip()
    assert node.pid() is None


def test_a_foreign_process_on_the_port_is_named(run_dir: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        node = LocalNode(node_settings(run_dir, es_http_port=port))
        with pytest.raises(PortInUseError, match=f"127.0.0.1:{port} is already in use"):
            node.start()


@pytest.mark.slow
def test_unknown_version_fails_with_mavens_answer(run_dir: Path) -> None:
    node = LocalNode(node_settings(run_dir, es_version="9.99.99", es_install_dir=run_dir / "dist"))
    with pytest.raises(LauncherError, match="Maven could not fetch"):
        node.install()


def test_a_relative_var_dir_is_fixed_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """SOC_VAR_DIR=var/x once made Maven copy the server into var/x/es/dist/var/x/es/dist (its
    working directory is the dist folder) and then failed with "is Maven Central reachable?"."""
    from soc.config import Settings

    monkeypatch.setenv("SOC_VAR_DIR", "var/elsewhere")
    monkeypatch.setenv("SOC_ES_INSTALL_DIR", "~/dist")
    settings = Settings()
    assert settings.var_dir == Path.cwd() / "var" / "elsewhere"
    assert settings.es_dist_dir == Path.home() / "dist"
    assert LocalNode(settings).dist_dir.is_absolute()
