"""Stopping ``soc demo`` during its first step: the node it started stops with it, and the
interrupted backfill resumes on the next run instead of starting from zero. Progress lines carry
the total and an ETA when the output is not a terminal (here: a file)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from soc.config import PROJECT_ROOT, load_settings
from soc.es.launcher import LocalNode
from tests.conftest import free_port, new_run_dir
from tests.demo.test_demo_e2e import alive


def _demo(run_dir: Path, out: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOC_")}
    env.update(SOC_VAR_DIR=str(run_dir), SOC_ES_INSTALL_DIR=str(PROJECT_ROOT / "var/es/dist"),
               SOC_ES_HTTP_PORT=str(free_port()), SOC_ES_TRANSPORT_PORT=str(free_port()),
               SOC_ES_HEAP="384m", SOC_INDEX_PREFIX="demostop", SOC_ES_START_TIMEOUT="300",
               SOC_LOG_LEVEL="WARNING")  # fmt: skip
    argv = [sys.executable, "-m", "soc.cli", "demo", "--backfill-days", "2", "--scale", "0.5",
            "--no-train", "--no-live"]  # fmt: skip
    with out.open("wb") as fh:
        return subprocess.Popen(argv, env=env, cwd=PROJECT_ROOT, stdout=fh,
                                stderr=subprocess.STDOUT)  # fmt: skip


def _wait_for(pattern: str, out: Path, proc: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = out.read_text(errors="replace")
        if re.search(pattern, text):
            return text
        assert proc.poll() is None, f"soc demo exited early:\n{text[-3000:]}"
        time.sleep(0.5)
    raise AssertionError(f"no {pattern!r} in:\n{out.read_text(errors='replace')[-3000:]}")


def _stop_during_backfill(run_dir: Path, out: Path, after: str) -> dict[str, object]:
    proc = _demo(run_dir, out)
    try:
        _wait_for(after, out, proc, timeout=420)
        es_pid = int((run_dir / "es" / "node" / "es.pid").read_text())
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
        stopped_in = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.read_text(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    assert "Elasticsearch stopped" in text
    assert not alive(es_pid), "the demo's Elasticsearch outlived it"
    record: dict[str, object] = json.loads((run_dir / "demo" / "backfill.json").read_text())
    return {**record, "stopped_in": stopped_in, "text": text}


@pytest.mark.timeout(1200)
def test_sigterm_during_backfill_stops_the_node_and_the_next_run_resumes(tmp_path: Path) -> None:
    run_dir = new_run_dir("demo-stop")
    try:
        progress = r"history: step 2/8 \(25%\), elapsed \S+, ETA \d+m\d\ds"
        first = _stop_during_backfill(run_dir, tmp_path / "first.out", progress)
        assert "history: 8 steps to backfill" in str(first["text"])
        assert first["complete"] is False
        assert first["done_until"] != first["start"]
        second = _stop_during_backfill(run_dir, tmp_path / "second.out",
                                       r"resuming after step [2-7]\b")  # fmt: skip
        assert second["start"] == first["start"]  # the same window, not a new one from zero
        assert str(second["done_until"]) >= str(first["done_until"])
    finally:
        # A demo that failed the test was SIGKILLed: its node (own session) must not outlive it.
        LocalNode(
            load_settings(var_dir=run_dir, es_install_dir=PROJECT_ROOT / "var/es/dist")
        ).stop()
        shutil.rmtree(run_dir, ignore_errors=True)
