"""``soc collect`` as a real process: check, run, SIGKILL in the middle (its parse workers end
with it), restart, status. The index ends with exactly the lines written: nothing lost, nothing
doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
from elasticsearch import Elasticsearch

from soc.config import Settings
from soc.es.indices import Indices
from tests.collectors.conftest import count, write_config
from tests.collectors.test_sources import access, wait_for
from tests.collectors.test_workers import alive

SOC = [sys.executable, "-m", "soc.cli"]


def _env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "SOC_ES_URL": settings.effective_es_url,
            "SOC_INDEX_PREFIX": settings.index_prefix,
            "SOC_LOG_LEVEL": "WARNING",
        }
    )
    return env


def test_check_names_file_and_line(tmp_path: Path, settings: Settings) -> None:
    good = write_config(tmp_path, [{"id": "t", "type": "file", "paths": ["/x/**/*.log"]}])
    done = subprocess.run(
        [*SOC, "collect", "check", "-c", str(good)],
        env=_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "1 sources" in done.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "collector:\n  id: x\nsources:\n  - id: a\n    type: syslog-udp\n    port: 99999\n"
    )
    done = subprocess.run(
        [*SOC, "collect", "check", "-c", str(bad)],
        env=_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"{bad}:6: sources.0.port: Input should be less than or equal to 65535" in done.stderr
    # an inventory path pattern that routes no line to a service (before: "ok")
    unrouted = tmp_path / "unrouted.yaml"
    unrouted.write_text(
        "collector:\n  id: x\ninventory:\n  systems:\n    - id: hn\n      province: '01'\n"
        "      paths:\n        - /var/log/hn/*.log\n"
        "sources:\n  - {id: a, type: file, paths: ['/var/log/**/*.log']}\n"
    )
    done = subprocess.run([*SOC, "collect", "check", "-c", str(unrouted)], env=_env(settings),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert f"{unrouted}:8: inventory.systems.0.paths.0: '/var/log/hn/*.log' routes no line: " \
           "system 'hn' has no service" in done.stderr  # fmt: skip


def _status(state: Path) -> dict[str, int]:
    path = state / "status.json"
    if not path.exists():
        return {}
    try:
        return dict(orjson.loads(path.read_bytes())["sources"].get("tail", {}))
    except orjson.JSONDecodeError:
        return {}


def test_sigkill_and_restart_lose_nothing_double_nothing(
    tmp_path: Path, settings: Settings, es: Elasticsearch, ready: Indices
) -> None:
    logs = tmp_path / "logs" / "hn"
    logs.mkdir(parents=True)
    log = logs / "portal.log"
    log.write_bytes(b"".join(access(i) for i in range(4000)))
    cfg = write_config(
        tmp_path,
        [
            {
                "id": "tail",
                "type": "file",
                "paths": [str(logs / "*.log")],
                "format": "access",
                "poll_interval": 0.05,
            }
        ],
        batch_size=200,
    )
    state = tmp_path / "state"
    first = subprocess.Popen(
        [*SOC, "collect", "run", "-c", str(cfg)],
        env=_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _status(state).get("indexed", 0) > 0, timeout=60)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    workers = orjson.loads((state / "status.json").read_bytes())["workers"]["pids"]
    assert workers  # the collector parsed in a worker process, which ends with it
    wait_for(lambda: not any(alive(pid) for pid in workers), timeout=10)
    with log.open("ab") as fh:
        fh.write(b"".join(access(i) for i in range(4000, 6000)))
    second = subprocess.Popen(
        [*SOC, "collect", "run", "-c", str(cfg)],
        env=_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: count(es, ready.events) >= 6000, timeout=90)
        time.sleep(0.5)
    finally:
        second.send_signal(signal.SIGTERM)
        _, stderr = second.communicate(timeout=60)
    assert second.returncode == 0, stderr
    assert count(es, ready.events) == 6000
    offsets = es.search(
        index=ready.events,
        size=0,
        aggs={"twice": {"terms": {"field": "log.offset", "min_doc_count": 2, "size": 10}}},
    )
    assert offsets["aggregations"]["twice"]["buckets"] == []  # no line is there twice
    shown = subprocess.run(
        [*SOC, "collect", "status", "-c", str(cfg), "--json"],
        env=_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    tail = orjson.loads(shown.stdout)["sources"]["tail"]
    # the second run's own accounting: everything it read is settled, and it resumed (< 6000)
    assert 2000 <= tail["read"] < 6000
    taken = tail["read"] + tail["resumed"]  # resumed: left in the spool by the killed run
    assert taken == tail["indexed"] + tail["duplicates"] + tail["deadlettered"]
