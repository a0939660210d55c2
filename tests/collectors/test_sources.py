"""Every source through a running collector into the real Elasticsearch: real files with rotation
and restarts, real UDP/TCP sockets, real HTTP, real probes; exact counts and the accounting identity
``read = indexed + duplicates + dead-lettered + dropped`` for every source."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from elasticsearch import Elasticsearch

from collectors.flows import Collector
from soc.es.indices import Indices
from tests.collectors.conftest import PUSH_TOKEN, Page, count, web_server
from tests.conftest import free_port

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


def wait_for(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def access(n: int, tag: str = "") -> bytes:
    at = (NOW + timedelta(seconds=n)).astimezone(UTC)
    stamp = at.strftime("%d/%b/%Y:%H:%M:%S +0000")
    return (
        f'10.0.0.{n % 250} - u{n} [{stamp}] "GET /p/{tag}{n}?q=1 HTTP/1.1" 200 {n} "-" '
        f'"agent" 0.{n % 10}05\n'
    ).encode()


def app(n: int, system: str = "vneid") -> dict[str, Any]:
    return {
        "ts": (NOW + timedelta(milliseconds=n)).isoformat(),
        "system": system,
        "host": "h1",
        "level": "info",
        "event": "login",
        "result": "success",
        "step": "token",
        "province": "79",
        "request_id": f"r{n}",
    }


def identity_holds(c: Collector, source: str) -> None:
    m = c.metrics
    read = m.get(source, "read") + m.get(source, "resumed")
    settled = sum(m.get(source, k) for k in ("indexed", "duplicates", "deadlettered", "dropped"))
    assert read == settled, c.metrics.snapshot()


def test_file_tail_rotation_partial_lines_and_restart(
    run_collector: Callable[..., Collector], es: Elasticsearch, ready: Indices, tmp_path: Path
) -> None:
    logs = tmp_path / "logs" / "hn"
    logs.mkdir(parents=True)
    log = logs / "portal.log"
    spec = [
        {
            "id": "tail",
            "type": "file",
            "paths": [str(logs / "*.log")],
            "format": "access",
            "poll_interval": 0.05,
        }
    ]
    with log.open("ab") as fh:
        fh.write(b"".join(access(i) for i in range(10)) + access(10)[:25])  # partial last line
        fh.flush()
        c = run_collector(spec)
        wait_for(lambda: c.metrics.get("tail", "read") == 10)
        time.sleep(0.2)
        assert c.metrics.get("tail", "read") == 10  # the partial line waits for its newline
        fh.write(access(10)[25:] + access(11))
        fh.flush()
        wait_for(lambda: c.metrics.get("tail", "read") == 12)
        log.rename(logs / "portal.log.1")  # rename rotation: the writer still holds the old file
        fh.write(access(12) + access(13))
    log.write_bytes(access(14) + access(15) + access(16))
    wait_for(lambda: c.metrics.get("tail", "read") == 17)
    # copy-truncate: the file is emptied in place and written again from the start
    with log.open("r+b") as fh:
        fh.truncate(0)
    time.sleep(0.2)
    with log.open("ab") as fh:
        fh.write(access(17, "t") + access(18, "t"))
    wait_for(lambda: c.metrics.get("tail", "read") == 19)
    assert c.stop(drain_timeout=20)
    identity_holds(c, "tail")
    assert count(es, ready.events) == 19
    # restart: offsets persisted, only the new lines are read
    with log.open("ab") as fh:
        fh.write(access(19, "t") + access(20, "t"))
    again = run_collector(spec)
    wait_for(lambda: again.metrics.get("tail", "read") == 2)
    assert again.stop(drain_timeout=20)
    assert count(es, ready.events) == 21
    hit = es.search(index=ready.events, query={"term": {"url.path": "/p/5"}})["hits"]["hits"][0]
    doc = hit["_source"]
    assert doc["service"]["name"] == "web-portal"
    assert doc["locality"]["ward"]["code"] == "00070"
    assert doc["log"]["file"]["path"].endswith("portal.log")
    assert doc["soc"]["source"] == {"id": "tail", "type": "file"}


def test_syslog_udp_and_tcp(
    run_collector: Callable[..., Collector], es: Elasticsearch, ready: Indices
) -> None:
    udp_port, tcp_port = free_port(), free_port()
    c = run_collector(
        [
            {"id": "udp", "type": "syslog-udp", "port": udp_port},
            {"id": "tcp", "type": "syslog-tcp", "port": tcp_port},
        ]
    )
    stamp = NOW.isoformat()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for i in range(30):
            body = orjson.dumps(app(i)).decode()
            udp.sendto(f"<134>1 {stamp} vn-1 vneid - - - {body}".encode(), ("127.0.0.1", udp_port))
        udp.sendto(
            b"<38>Nov  3 09:15:02 portal-hn-01 nginx[1]: upstream timed out",
            ("127.0.0.1", udp_port),
        )
        udp.sendto(b"\xff\xfegarbage without pri", ("127.0.0.1", udp_port))
    frames = []
    for i in range(30, 40):
        msg = f"<134>1 {stamp} vn-1 vneid - - - {orjson.dumps(app(i)).decode()}".encode()
        frames.append(str(len(msg)).encode() + b" " + msg if i % 2 else msg + b"\n")
    frames.append(b"<13>1 - portal-hn-01 app - - - no timestamp here\n")
    frames.append(b"no pri at all\n")
    with socket.create_connection(("127.0.0.1", tcp_port)) as tcp:
        tcp.sendall(b"".join(frames))
    wait_for(lambda: c.metrics.get("udp", "read") == 32 and c.metrics.get("tcp", "read") == 12)
    assert c.stop(drain_timeout=20)
    for source in ("udp", "tcp"):
        identity_holds(c, source)
    assert c.metrics.get("udp", "deadlettered") == 1
    assert c.metrics.get("tcp", "deadlettered") == 1
    assert count(es, ready.events) == 31 + 11
    assert count(es, ready.deadletter) == 2
    flagged = count(es, ready.events, {"term": {"soc.flags": "timestamp_missing"}})
    assert flagged == 1
    nginx = es.search(index=ready.events, query={"term": {"log.syslog.appname": "nginx"}})
    doc = nginx["hits"]["hits"][0]["_source"]
    assert doc["service"]["name"] == "web-portal"  # attributed by the inventory's host
    assert doc["message"] == "upstream timed out"


def _post(port: int, body: bytes, token: str | None, ctype: str = "application/x-ndjson",
          ) -> tuple[int, dict[str, Any]]:  # fmt: skip
    headers = {"Content-Type": ctype}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/push", data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - http to localhost
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def test_http_push_with_per_source_token(
    run_collector: Callable[..., Collector], es: Elasticsearch, ready: Indices
) -> None:
    port = free_port()
    c = run_collector(
        [{"id": "push", "type": "http", "port": port, "max_body_mb": 0.01}],
        metrics_port=free_port(),
    )
    hanoi = {"province": "01"}  # the token's system is in Hà Nội: it may push Hà Nội's events
    batch = b"\n".join(orjson.dumps(app(i, "payment") | hanoi) for i in range(5)) + b"\n{trunc\n"
    assert _post(port, batch, PUSH_TOKEN) == (200, {"accepted": 6, "events": 5, "deadlettered": 1})
    one = orjson.dumps(app(99, "otp-gateway") | hanoi)
    status, body = _post(port, one, PUSH_TOKEN, "application/json")
    assert (status, body["events"]) == (200, 1)
    wrapped = orjson.dumps({"line": access(7).decode().rstrip("\n")})
    assert _post(port, wrapped, PUSH_TOKEN)[0] == 200
    assert _post(port, batch, None)[0] == 401
    status, body = _post(port, batch, "wrong-token")
    assert status == 401
    assert "token" in body["detail"]
    assert _post(port, b"x" * 20_000, PUSH_TOKEN)[0] == 413
    assert _post(port, b"\n", PUSH_TOKEN)[0] == 400
    wait_for(lambda: c.metrics.get("push", "indexed") == 7)
    with urllib.request.urlopen(f"http://127.0.0.1:{c.metrics_port}/metrics") as resp:
        scraped = resp.read().decode()
    labels = 'collector="test-collector",source="push"'
    assert f"soc_collector_read_total{{{labels}}} 8.0" in scraped
    assert f"soc_collector_deadlettered_total{{{labels}}} 1.0" in scraped
    assert f"soc_collector_indexed_total{{{labels}}} 7.0" in scraped
    assert c.stop(drain_timeout=20)
    identity_holds(c, "push")
    assert count(es, ready.events) == 7
    assert count(es, ready.deadletter) == 1
    res = es.search(index=ready.events, query={"term": {"service.name": "web-portal"}})
    doc = res["hits"]["hits"][0]["_source"]
    assert doc["soc"]["system"] == "hn-portal"
    assert doc["locality"]["ward"]["code"] == "00070"


class _Page(Page):
    def do_GET(self) -> None:
        self.reply(200 if self.path == "/" else 503, "Cổng Dịch vụ công — đang hoạt động".encode())


@pytest.fixture
def web() -> Iterator[int]:
    with web_server(_Page) as port:
        yield port


def test_health_probes(
    run_collector: Callable[..., Collector], es: Elasticsearch, ready: Indices, web: int
) -> None:
    base = f"http://127.0.0.1:{web}"
    targets = [
        {
            "name": "ok",
            "url": f"{base}/",
            "service": "web-portal",
            "province": "01",
            "keyword": "Dịch vụ công",
        },
        {
            "name": "no-keyword",
            "url": f"{base}/",
            "service": "web-portal",
            "province": "01",
            "keyword": "bảo trì",
        },
        {"name": "down", "url": f"{base}/down", "service": "one-stop-shop", "province": "79"},
        {
            "name": "refused",
            "url": f"http://127.0.0.1:{free_port()}/",
            "service": "vneid",
            "province": "01",
            "ward": "00070",
        },
    ]
    c = run_collector(
        [{"id": "probes", "type": "probe", "interval": 0.3, "timeout": 2, "targets": targets}]
    )
    wait_for(lambda: c.metrics.get("probes", "read") >= 8)
    assert c.stop(drain_timeout=20)
    identity_holds(c, "probes")
    assert count(es, ready.events) == c.metrics.get("probes", "read")
    es.indices.refresh(index=ready.events)
    by_name: dict[str, dict[str, Any]] = {}
    for hit in es.search(index=ready.events, size=100)["hits"]["hits"]:
        by_name[hit["_source"]["soc"]["probe"]["target"]] = hit["_source"]
    ok = by_name["ok"]
    assert ok["event"]["dataset"] == "probe.http"
    assert ok["event"]["kind"] == "metric"
    assert ok["soc"]["probe"]["up"] is True
    assert ok["soc"]["probe"]["keyword_found"] is True
    assert ok["http"]["response"]["status_code"] == 200
    assert by_name["no-keyword"]["soc"]["probe"]["up"] is False
    assert "bảo trì" in by_name["no-keyword"]["error"]["message"]
    assert by_name["down"]["error"]["message"] == "HTTP 503, expected 200"
    refused = by_name["refused"]
    assert refused["event"]["outcome"] == "failure"
    assert "ConnectionRefused" in refused["error"]["message"]
    assert refused["locality"]["ward"]["code"] == "00070"
