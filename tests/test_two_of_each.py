"""Two of each, as two hosts would run them against one cluster: ``soc detect``, ``soc pipeline``
and ``soc api`` twice each (own var dirs), real processes, a real SMTP sink. Attacks become one
alert per window, one incident per cause and one email per incident event, never two. Then the
active detector, one pipeline and one API are SIGKILLed: the standby detector takes over within
30 s (the compose file's lease TTL, 20 s), and the next attack still reaches an incident and
an email, once."""

from __future__ import annotations

import mailbox
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from elasticsearch import Elasticsearch

from soc.config import PROJECT_ROOT
from soc.es.indices import Indices
from soc.es.templates import setup
from soc.events.service import index_events
from tests.conftest import free_port
from tests.detectors.test_detect_process import RULES

SOC = [sys.executable, "-m", "soc.cli"]
LEASE_TTL = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())["x-soc"][
    "environment"
]["SOC_DETECT_LEASE_TTL"]


def _scanner(ip: str, province: str) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {"@timestamp": now, "locality": {"province": {"code": province}},
            "source": {"ip": ip}, "service": {"name": "web-portal"},
            "user_agent": {"original": "sqlmap/1.8"},
            "event": {"kind": "event", "category": ["web"], "ingested": now}}  # fmt: skip


class Fleet:
    """The six processes and the mail sink, each with its log."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.api_ports = {"a": free_port(), "b": free_port()}

    def start(self, name: str, argv: list[str], **extra: str) -> None:
        env = {**self.env, **extra}
        with (self.root / f"{name}.log").open("wb") as out:
            self.procs[name] = subprocess.Popen(argv, env=env, stdout=out,
                                                stderr=subprocess.STDOUT,
                                                start_new_session=True)  # fmt: skip

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def kill(self, name: str) -> None:
        os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait(10)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.mark.timeout(300)
def test_two_of_each_double_nothing_and_take_over(
    es: Elasticsearch, es_url: str, prefix: str, tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "scan.yml").write_text(RULES["scan.yml"], encoding="utf-8")
    indices = Indices(prefix)
    setup(es, indices)
    smtp = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOC_")}
    env.update(SOC_ES_URL=es_url, SOC_INDEX_PREFIX=prefix, SOC_RULES_DIR=str(rules),
               SOC_DETECT_TICK="1", SOC_DETECT_SETTLE="1", SOC_DETECT_LEASE_TTL=str(LEASE_TTL),
               SOC_DEMO_PIPELINE_TICK="1", SOC_SMTP_PORT=str(smtp), SOC_LOG_LEVEL="INFO",
               SOC_NOTIFY_RETRY_BASE="1", SOC_NOTIFY_RATE_LIMIT="1000")  # fmt: skip
    fleet = Fleet(tmp_path, env)
    mail = tmp_path / "mail"
    fleet.start("sink", [*SOC, "notify", "sink", "--maildir", str(mail)])
    for host in ("a", "b"):
        var = {"SOC_VAR_DIR": str(tmp_path / host)}
        fleet.start(f"detect-{host}", [*SOC, "detect", "run"], **var)
        fleet.start(f"pipeline-{host}", [*SOC, "pipeline", "--no-anomaly"], **var)
        fleet.start(f"api-{host}", [*SOC, "api", "--port", str(fleet.api_ports[host])], **var)
    try:
        feed = _feeder(es, indices, "198.51.100.7", "01")
        _until(lambda: feed() and _emails(mail) >= 1, 120, fleet)
        _until(lambda: all(_health(port) == 200 for port in fleet.api_ports.values()), 60, fleet)
        active = next(h for h in ("a", "b") if "tick searches=" in fleet.log(f"detect-{h}"))
        standby = "b" if active == "a" else "a"
        before = fleet.log(f"detect-{standby}").count("tick searches=")
        assert before == 0, "the standby detector ran rules while the other held the lease"
        for name in (f"detect-{active}", "pipeline-a", "api-a"):
            fleet.kill(name)
        killed = time.monotonic()
        assert _health(fleet.api_ports["b"]) == 200  # the other API answers
        feed = _feeder(es, indices, "203.0.113.9", "79")  # a new attack elsewhere
        _until(lambda: feed() and "tick searches=" in fleet.log(f"detect-{standby}"), 60, fleet)
        takeover = time.monotonic() - killed
        _until(lambda: feed() and _incidents(es, indices, "79") >= 1 and _emails(mail) >= 2,
               90, fleet)  # fmt: skip
        time.sleep(5)  # both pipelines' next rounds: would they double anything?
    finally:
        fleet.stop()
    print(f"standby soc detect took over {takeover:.1f} s after the active one was killed")
    assert takeover < 30
    _assert_nothing_doubled(es, indices, mail)


def _feeder(es: Elasticsearch, indices: Indices, ip: str, province: str) -> Callable[[], bool]:
    def feed() -> bool:
        index_events(es, indices, [_scanner(ip, province)], refresh=True)
        return True

    return feed


def _until(check: Callable[[], bool], timeout: float, fleet: Fleet) -> None:
    began = time.monotonic()
    while not check():
        for name, proc in fleet.procs.items():
            assert proc.poll() is None or name in _killed(fleet), (name, fleet.log(name)[-2000:])
        assert time.monotonic() - began < timeout, "timed out"
        time.sleep(0.5)


def _killed(fleet: Fleet) -> set[str]:
    return {n for n, p in fleet.procs.items() if p.returncode == -signal.SIGKILL}


def _emails(mail: Path) -> int:
    return len(list(mailbox.Maildir(mail, create=False))) if (mail / "new").exists() else 0


def _incidents(es: Elasticsearch, indices: Indices, province: str) -> int:
    es.indices.refresh(index=indices.incidents)
    query = {"term": {"locality.province.code": province}}
    return int(es.count(index=indices.incidents, query=query)["count"])


def _health(port: int) -> int:
    """The API's health status; 0 while it is not listening yet (a slow start on a loaded box)."""
    url = f"http://127.0.0.1:{port}/api/v1/health"
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except urllib.error.URLError:
        return 0


def _assert_nothing_doubled(es: Elasticsearch, indices: Indices, mail: Path) -> None:
    es.indices.refresh(index=f"{indices.alerts},{indices.incidents}")
    alerts = es.search(index=indices.alerts, size=1000)["hits"]["hits"]
    windows = Counter((a["_source"]["rule"]["id"], a["_source"]["window"]["start"],
                       str(a["_source"].get("locality")), str(a["_source"].get("entity")))
                      for a in alerts)  # fmt: skip
    assert alerts
    assert max(windows.values()) == 1, "an alert written twice for one window"
    incidents = es.search(index=indices.incidents, size=1000)["hits"]["hits"]
    keys = Counter(i["_source"]["incident"]["group_key"] for i in incidents)
    assert len(incidents) >= 2
    assert max(keys.values()) == 1, "two incidents for one cause"
    caught = Counter(msg["Message-ID"] for msg in mailbox.Maildir(mail, create=False))
    assert max(caught.values()) == 1, "an email sent twice"
    opened = Counter(msg["X-SOC-Incident"] for msg in mailbox.Maildir(mail, create=False)
                     if msg["X-SOC-Event"] == "opened")  # fmt: skip
    assert not opened or max(opened.values()) == 1, "an incident announced twice"
