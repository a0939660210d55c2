"""A real three-node cluster on this machine (soc.es.cluster): ``soc collect`` and ``soc detect``
run as processes with all three nodes in ``SOC_ES_URL``; the elected master, one of the nodes
they talk to, is SIGKILLed. Ingest and detection go on within 10 s on the two left, and the index
ends with exactly the lines written: nothing lost, nothing doubled."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from soc.config import PROJECT_ROOT, load_settings
from soc.es.client import make_client
from soc.es.cluster import LocalCluster
from soc.es.indices import Indices
from soc.es.templates import Layout, setup
from tests.collectors.conftest import count, write_config
from tests.collectors.test_sources import access
from tests.conftest import new_run_dir

SOC = [sys.executable, "-m", "soc.cli"]
RATE = 40  # lines a second
_TICK = re.compile(r"^(\S+) level=INFO logger=detectors.scheduling tick searches=\d+ .* errors=0 ")


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    run_dir = new_run_dir("cluster")
    nodes = LocalCluster(
        load_settings(var_dir=run_dir, es_install_dir=PROJECT_ROOT / "var" / "es" / "dist"),
        3,
        heap="512m",
    )
    try:
        nodes.start()
        yield nodes
    finally:
        nodes.stop()
        if not os.environ.get("SOC_TEST_KEEP_CLUSTER"):  # the nodes' logs, to see why
            shutil.rmtree(run_dir, ignore_errors=True)


class Writer(threading.Thread):
    """Appends access-log lines at ``RATE`` a second, remembering when each was written."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.written, self.stop = path, 0, threading.Event()

    def run(self) -> None:
        with self.path.open("ab", buffering=0) as fh:
            while not self.stop.wait(1 / RATE):
                fh.write(access(self.written))
                self.written += 1


def _env(urls: list[str], prefix: str, var: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOC_")}
    env.update(SOC_ES_URL=",".join(urls), SOC_INDEX_PREFIX=prefix, SOC_VAR_DIR=str(var),
               SOC_INDEX_REPLICAS="1", SOC_DETECT_TICK="2", SOC_LOG_LEVEL="INFO",
               SOC_ES_REQUEST_TIMEOUT="10")  # fmt: skip
    return env


def test_the_client_knows_every_node_listed_or_sniffed(cluster: LocalCluster) -> None:
    listed: Elasticsearch = make_client(load_settings(es_url=",".join(cluster.urls)))
    assert len(listed.transport.node_pool.all()) == 3
    sniffed = make_client(load_settings(es_url=cluster.urls[0], es_sniff=True))
    assert sorted(str(n.base_url) for n in sniffed.transport.node_pool.all()) == sorted(
        cluster.urls
    )


@pytest.mark.timeout(400)
def test_killing_the_node_soc_talks_to_loses_nothing(cluster: LocalCluster, tmp_path: Path) -> None:
    prefix = f"t{os.getpid()}c"
    es = make_client(load_settings(es_url=",".join(cluster.urls), es_request_timeout=10))
    es.cluster.health(wait_for_nodes="3", wait_for_status="green", timeout="60s")
    indices = Indices(prefix)
    setup(es, indices, layout=Layout(replicas=1))
    logs = tmp_path / "logs" / "hn"
    logs.mkdir(parents=True)
    source = {"id": "tail", "type": "file", "paths": [str(logs / "*.log")], "format": "access",
              "poll_interval": 0.1}  # fmt: skip
    cfg = write_config(tmp_path, [source], batch_size=100, flush_interval=0.3)
    env = _env(cluster.urls, prefix, tmp_path / "var")
    writer = Writer(logs / "portal.log")
    writer.start()
    procs = {
        "collect": _spawn(tmp_path / "collect.log", [*SOC, "collect", "run", "-c", str(cfg)], env),
        "detect": _spawn(tmp_path / "detect.log", [*SOC, "detect", "run"], env),
    }
    try:
        _until(lambda: count(es, indices.events) > 100 and _ticks(tmp_path) > 1, 120, procs)
        # Only a started replica can replace a lost primary: a daily index created seconds ago
        # may still be copying its replica (yellow), and losing its primary then leaves it red.
        health = es.cluster.health(index=f"{prefix}-*", wait_for_status="green", timeout="60s")
        assert health["status"] == "green"
        answer = es.cat.master(format="json")
        assert isinstance(answer.body, list)  # format=json: rows, not text
        master = answer.body[0]["node"]
        victim = [n.membership.node for n in cluster.nodes if n.membership].index(master)
        cut, written_at_kill = time.time(), writer.written
        cluster.kill(victim)
        ingest = _until(lambda: count(es, indices.events) > written_at_kill + RATE, 60, procs)
        _until(lambda: _ticks(tmp_path, after=cut) > 0, 60, procs)
        detect = _ticks_after(tmp_path, cut)[0] - cut  # the first good tick, from its log line
        time.sleep(3)
        writer.stop.set()
        writer.join()
        _until(lambda: count(es, indices.events) >= writer.written, 60, procs)
        time.sleep(2)
        total = count(es, indices.events)
    finally:
        writer.stop.set()
        for proc in procs.values():
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(60)
    print(f"killed master {master}: ingest went on after {ingest:.1f} s, detection after "
          f"{detect:.1f} s; {writer.written} lines, {total} events")  # fmt: skip
    assert ingest < 10
    assert detect < 10
    assert total == writer.written  # nothing lost, nothing doubled (ids are deterministic)


def _spawn(log: Path, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own descriptor
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip


def _until(check: object, timeout: float, procs: dict[str, subprocess.Popen[bytes]]) -> float:
    """Seconds until ``check()`` holds; fails if a process exits or time runs out."""
    assert callable(check)
    began = time.monotonic()
    while not check():
        for name, proc in procs.items():
            assert proc.poll() is None, f"{name} exited with {proc.returncode}"
        assert time.monotonic() - began < timeout, "timed out"
        time.sleep(0.2)
    return time.monotonic() - began


def _ticks_after(tmp_path: Path, after: float) -> list[float]:
    """When successful ``soc detect`` ticks were logged, from the second after ``after`` on
    (the log has whole seconds: a tick in the second of the kill is not counted)."""
    text = (tmp_path / "detect.log").read_text(errors="replace")
    stamps = [datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S%z").timestamp()
              for m in map(_TICK.match, text.splitlines()) if m]  # fmt: skip
    return [at for at in stamps if at >= int(after) + 1]


def _ticks(tmp_path: Path, after: float = 0.0) -> int:
    return len(_ticks_after(tmp_path, after))
