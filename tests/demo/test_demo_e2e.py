"""``soc demo`` end to end, as a user runs it: one subprocess, real Elasticsearch, real SMTP sink,
real collector reading the simulator's log files.

A short history, fast intervals and a scenario every 10 s from second 5. The test waits until an
injected scenario produced an alert, an incident and an email in the sink; kills ``soc detect`` with
SIGKILL (the supervisor must restart it, and detection must go on without doubling anything);
holds the SMTP sink down for a while (emails wait in the outbox and are retried, then delivered
exactly once); then sends SIGINT and checks that the supervisor and every child exited.
"""

from __future__ import annotations

import json
import mailbox
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from soc.demo.measure import Timing, timing
from soc.es.indices import Indices
from soc.simulate import labels as labels_file

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_range(count: int) -> int:
    """A first port with ``count`` free ports after it (the mock fleet: one per province)."""
    for _ in range(50):
        base = free_port()
        if base + count > 65000:
            continue
        try:
            held = []
            for port in range(base, base + count):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise AssertionError("no free port range")


def wait_for(
    what: str, check: Callable[[], Any], timeout: float, proc: subprocess.Popen[str]
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"soc demo exited early with {proc.returncode}"
        value = check()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (its parent has not reaped it yet).
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


@pytest.fixture
def demo(es_url: str, prefix: str, tmp_path: Path) -> Any:
    env = {
        **os.environ,
        "SOC_ES_URL": es_url, "SOC_INDEX_PREFIX": prefix, "SOC_VAR_DIR": str(tmp_path),
        "SOC_API_PORT": str(free_port()), "SOC_SMTP_PORT": str(free_port()),
        "SOC_DETECT_TICK": "2", "SOC_DETECT_SETTLE": "1", "SOC_DEMO_PIPELINE_TICK": "1",
        # The restarted detector waits for the killed one's lease to expire: keep that short.
        "SOC_DETECT_LEASE_TTL": "8",
        "SOC_DEMO_STOP_TIMEOUT": "10", "SOC_NOTIFY_RETRY_BASE": "1", "SOC_NOTIFY_RETRY_MAX": "5",
        # Scenarios every 10 s would otherwise hit the per-recipient rate limit (digests).
        "SOC_NOTIFY_RATE_LIMIT": "10000",
        "SOC_SIMULATE_PUSH_TOKEN": "", "SOC_AUTH_DEMO_PASSWORD": "",
    }  # fmt: skip
    env = {k: v for k, v in env.items() if v != ""}
    argv = [sys.executable, "-m", "soc.cli", "demo", "--backfill-days", "0.02", "--scale", "0.2",
            "--no-train", "--no-anomaly", "--scenario-every", "10", "--first-scenario", "5",
            "--probe-interval", "5", "--fleet-port", str(free_range(34)),
            "--push-port", str(free_port())]  # fmt: skip
    out = (tmp_path / "demo.out").open("w")
    proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip
    try:
        yield proc, tmp_path
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        out.close()


def count(es: Elasticsearch, index: str, query: dict[str, Any]) -> int:
    es.indices.refresh(index=index)
    return int(es.count(index=index, query=query)["count"])


def pids(var: Path) -> dict[str, int]:
    try:
        return dict(json.loads((var / "demo" / "children.json").read_text()))
    except (OSError, ValueError):
        return {}


def first_complete(es: Elasticsearch, indices: Indices, var: Path) -> Timing | None:
    path = var / "demo" / "live-labels.jsonl"
    if not path.exists():
        return None
    for label in labels_file.read(path):
        found = timing(es, indices, label)
        if found.complete:
            return found
    return None


@pytest.mark.timeout(600)
def test_demo_runs_the_whole_path_and_stops_cleanly(
    demo: Any, es: Elasticsearch, prefix: str
) -> None:
    proc, var = demo
    indices = Indices(prefix)
    wait_for("the children", lambda: len(pids(var)) >= 7, 120, proc)
    started = pids(var)
    assert set(started) >= {"supervisor", "smtp-sink", "api", "detect", "worker", "collect",
                            "simulate"}  # fmt: skip

    done = wait_for("alert → incident → email of a scenario",
                    lambda: first_complete(es, indices, var), 240, proc)  # fmt: skip
    assert done.alert is not None
    assert done.incident is not None
    assert done.email is not None
    assert done.start <= done.alert <= done.incident <= done.email
    assert list(mailbox.Maildir(var / "mail", create=False)), "the sink caught no email"

    # Drill: SIGKILL the detector; the supervisor restarts it and detection goes on.
    old = pids(var)["detect"]
    os.kill(old, signal.SIGKILL)
    wait_for("a new detect", lambda: pids(var).get("detect", old) != old, 60, proc)
    killed_at = time.time()
    es.indices.refresh(index=indices.alerts)

    def alert_after_restart() -> bool:
        es.indices.refresh(index=indices.alerts)
        newer = {"range": {"@timestamp": {"gt": int(killed_at * 1000) + 2000}}}
        return int(es.count(index=indices.alerts, query=newer)["count"]) > 0

    wait_for("an alert from the restarted detector", alert_after_restart, 150, proc)

    # Drill: the SMTP sink down for a while; emails wait in the outbox, then go exactly once.
    hold = var / "demo" / "hold"
    hold.mkdir(exist_ok=True)
    (hold / "smtp-sink").touch()
    os.killpg(pids(var)["smtp-sink"], signal.SIGKILL)
    time.sleep(8)
    (hold / "smtp-sink").unlink()
    back = int(time.time() * 1000)

    def outbox_drained() -> bool:
        queued_before = {"bool": {"filter": {"range": {"@timestamp": {"lte": back}}},
                                  "must_not": {"exists": {"field": "sent"}}}}  # fmt: skip
        return count(es, indices.outbox, queued_before) == 0

    wait_for("every queued email sent after the sink came back", outbox_drained, 120, proc)
    retried = count(es, indices.outbox, {"range": {"attempts": {"gt": 1}}})
    assert retried > 0, "no email was attempted while the sink was down"
    running = pids(var)

    proc.send_signal(signal.SIGINT)
    assert proc.wait(90) == 0
    left = [name for name, pid in running.items() if alive(pid)]
    assert not left, f"still running after the demo stopped: {left}"
    text = (var / "demo.out").read_text()
    for said in ("dashboard:", "analyst", "hanoi-it", "stopped:"):
        assert said in text

    # Nothing doubled: one alert per id (deterministic ids), one email per outbox message.
    es.indices.refresh(index=f"{prefix}-*")
    ids = es.search(index=indices.alerts, size=0, aggs={"ids": {"terms": {
        "field": "alert.id", "min_doc_count": 2, "size": 5}}})  # fmt: skip
    assert ids["aggregations"]["ids"]["buckets"] == []
    caught = Counter(msg["Message-ID"] for msg in mailbox.Maildir(var / "mail", create=False))
    assert caught
    assert max(caught.values()) == 1, caught.most_common(3)
    sent = count(es, indices.outbox, {"exists": {"field": "sent"}})
    assert sent == sum(caught.values())
