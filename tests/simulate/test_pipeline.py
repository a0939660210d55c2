"""End to end through the real collectors: a live run writes log files, syslog and HTTP pushes,
and the mock fleet answers the probes; a real collector reads all of it into Elasticsearch with
no dead letter, and the probes see the endpoint the simulator took down."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from elasticsearch import Elasticsearch

from soc.es.indices import Indices
from soc.localities import catalogue
from soc.services import Service
from soc.simulate import scenarios
from soc.simulate.fleet import Fleet, Mode
from soc.simulate.live import Sink, run_live
from soc.simulate.service import Plan, records
from soc.simulate.sinks import FileSink, HttpPushSink, SyslogSink, inventory_yaml

pytest.importorskip("collectors.flows")

from collectors.config import load_config
from collectors.flows import Collector

LIVE = Path(__file__).resolve().parents[2] / "scenarios" / "web-attack.yaml"
TOKEN = "simulator-push-token"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def collector_config(tmp_path: Path, logs: Path, udp: int, http: int,
                     targets: list[dict[str, Any]]) -> Path:  # fmt: skip
    inventory = yaml.safe_load(inventory_yaml(logs))
    inventory["systems"].append(
        {"id": "simulator-push", "token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest()}
    )
    body = {
        "collector": {"id": "sim-e2e", "state_dir": str(tmp_path / "state"),
                      "flush_interval": 0.1, "batch_size": 500, "retry_max": 0.5},
        "inventory": inventory,
        "sources": [
            {"id": "files", "type": "file", "paths": [f"{logs}/**/*.log"], "poll_interval": 0.1},
            {"id": "syslog", "type": "syslog-udp", "port": udp},
            {"id": "push", "type": "http", "port": http},
            {"id": "probes", "type": "probe", "interval": 0.3, "timeout": 2,
             "targets": [{"name": t["target"], "url": t["url"], "service": t["service"],
                          "province": t["province"], "ward": t["ward"],
                          "keyword": t["keyword"]} for t in targets]},
        ],
    }  # fmt: skip
    path = tmp_path / "collector.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False, allow_unicode=True), "utf-8")
    return path


def count(es: Elasticsearch, index: str, query: dict[str, Any] | None = None) -> int:
    # A daily index the collector has just created may not have its shard started yet.
    es.cluster.health(index=index, wait_for_status="yellow", timeout="10s")
    es.indices.refresh(index=index, allow_no_indices=True, ignore_unavailable=True)
    found = es.count(
        index=index, allow_no_indices=True, ignore_unavailable=True, query=query or None
    )
    return int(found["count"])


def test_live_traffic_goes_through_the_collectors(
    es: Elasticsearch, ready: Indices, tmp_path: Path
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    plan = Plan(seed=21, provinces=("46",),
                scenarios=tuple(scenarios.load(LIVE, catalogue(), start)))  # fmt: skip
    logs = tmp_path / "logs"
    logs.mkdir()
    udp, http = free_port(socket.SOCK_DGRAM), free_port()
    with Fleet(("46",)) as fleet:
        vneid = fleet.url("46", Service.VNEID)
        targets = [t for t in fleet.targets() if t["service"] in ("vneid", "one-stop-shop")]
        fleet.set("46", Service.VNEID, Mode.DOWN)
        collector = Collector(load_config(collector_config(tmp_path, logs, udp, http, targets)),
                              es, ready)  # fmt: skip
        collector.start()
        try:
            syslog = SyslogSink("127.0.0.1", udp)
            try:
                sinks: list[Sink] = [FileSink(logs), syslog, HttpPushSink(f"http://127.0.0.1:{http}/v1/push",
                                                              token=TOKEN)]  # fmt: skip
                run_live(plan, sinks, speed=1200, tick=0.05, start=start,
                         duration=timedelta(minutes=5))  # fmt: skip
            finally:
                syslog.close()
            sent = sum(1 for _ in records(plan, start, start + timedelta(minutes=5)))
            assert sent > 100
            app_lines = sum(1 for r in records(plan, start, start + timedelta(minutes=5))
                            if hasattr(r, "host"))  # fmt: skip
            expected = 2 * sent + app_lines  # files and push carry all, syslog the app lines
            # UDP may drop under load; the files and the push must not.
            query = {"bool": {"must_not": {"term": {"event.dataset": "probe.http"}}}}
            wait_for(lambda: count(es, ready.events, query) >= 2 * sent)
            wait_for(lambda: count(es, ready.events, {"term": {"soc.probe.up": False}}) > 0)
        finally:
            assert collector.stop(drain_timeout=20)
    letters = es.search(index=ready.deadletter, size=3, ignore_unavailable=True)["hits"]["hits"]
    assert count(es, ready.deadletter) == 0, [hit["_source"] for hit in letters]
    assert 2 * sent <= count(es, ready.events, query) <= expected
    for source in ("files", "push"):
        got = count(es, ready.events, {"term": {"soc.source.id": source}})
        assert got == sent, source
    down = es.search(index=ready.events, query={"term": {"soc.probe.up": False}}, size=1)
    assert down["hits"]["hits"][0]["_source"]["url"]["full"] == vneid
    healthy = [{"term": {"soc.probe.up": True}}, {"term": {"service.name": "one-stop-shop"}}]
    up = count(es, ready.events, {"bool": {"filter": healthy}})
    assert up > 0
