"""HTTP push on the wire: chunked bodies, 405 for other methods, refused until ready, a client
hanging up after 413 is one log line, and a token writes only its own province's events."""

from __future__ import annotations

import http.client
import logging
import socket
from collections.abc import Callable, Iterable
from pathlib import Path

import orjson
import pytest
from elasticsearch import Elasticsearch

from collectors.config import load_config
from collectors.flows import Collector
from soc.es.indices import Indices
from tests.collectors.conftest import PUSH_TOKEN, count, write_config
from tests.collectors.test_sources import app, identity_holds, wait_for
from tests.conftest import free_port

AUTH = {"Authorization": f"Bearer {PUSH_TOKEN}"}


def _request(
    port: int,
    method: str,
    body: bytes | Iterable[bytes] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, "/v1/push", body=body, headers={**AUTH, **(headers or {})})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def _hanoi(n: int) -> bytes:
    return orjson.dumps(app(n, "payment") | {"province": "01"})


def test_chunked_body_and_other_methods(
    run_collector: Callable[..., Collector], es: Elasticsearch, ready: Indices
) -> None:
    port = free_port()
    c = run_collector([{"id": "push", "type": "http", "port": port}])
    # an iterable body without a length: http.client sends it chunked (before: "empty body")
    chunks = (_hanoi(n) + b"\n" for n in range(3))
    status, _, body = _request(port, "POST", chunks)
    assert (status, orjson.loads(body)) == (200, {"accepted": 3, "events": 3, "deadlettered": 0})
    for method in ("GET", "PUT", "DELETE"):
        status, headers, _ = _request(port, method)
        assert (status, headers.get("Allow")) == (405, "POST")
    wait_for(lambda: c.metrics.get("push", "indexed") == 3)
    assert c.stop(drain_timeout=20)
    identity_holds(c, "push")


def test_refused_until_the_collector_is_ready(
    es: Elasticsearch, ready: Indices, tmp_path: Path
) -> None:
    port = free_port()
    config = load_config(write_config(tmp_path, [{"id": "push", "type": "http", "port": port}]))
    collector = Collector(config, es, ready)  # built (port bound), not started
    try:
        with pytest.raises(ConnectionRefusedError):  # not a client waiting in the backlog
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        collector.start()
        assert _request(port, "POST", _hanoi(1))[0] == 200
        collector.pipeline.ready.clear()  # e.g. workers restarting: pushes wait
        status, headers, _ = _request(port, "POST", _hanoi(2))
        assert (status, headers.get("Retry-After")) == (503, "1")
        collector.pipeline.ready.set()
    finally:
        assert collector.stop(drain_timeout=20)


def test_client_hanging_up_after_413_is_one_log_line(
    run_collector: Callable[..., Collector],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    run_collector([{"id": "push", "type": "http", "port": port, "max_body_mb": 0.001}])
    with caplog.at_level(logging.INFO):
        for _ in range(5):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"POST /v1/push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                         + PUSH_TOKEN.encode() + b"\r\nContent-Length: 5000000\r\n\r\n"
                         + b"x" * 60_000)  # fmt: skip
            sock.close()  # hangs up without reading the answer
        status, _, _ = _request(port, "POST", b"y" * 5000)
        assert status == 413
        chunked = iter([b"z" * 800, b"z" * 800])  # over the bound once the chunks add up
        assert _request(port, "POST", chunked)[0] == 413
    assert "Traceback" not in caplog.text + capfd.readouterr().err  # socketserver prints there
    assert not [r for r in caplog.records if r.exc_info]


def test_token_writes_only_its_own_province(
    run_collector: Callable[..., Collector], es: Elasticsearch, ready: Indices
) -> None:
    """Before: a token bound to Hà Nội wrote events for Huế by naming province 46."""
    port = free_port()
    c = run_collector([{"id": "push", "type": "http", "port": port}])
    hue_line = orjson.dumps(app(1, "payment") | {"province": "46"})
    hue_wrapper = orjson.dumps({"line": _hanoi(2).decode(), "province": "46"})
    own = _hanoi(3)
    status, _, body = _request(port, "POST", b"\n".join([hue_line, hue_wrapper, own]))
    assert (status, orjson.loads(body)) == (200, {"accepted": 3, "events": 1, "deadlettered": 2})
    wait_for(lambda: c.metrics.get("push", "deadlettered") == 2)
    assert c.stop(drain_timeout=20)
    identity_holds(c, "push")
    assert count(es, ready.events, {"term": {"locality.province.code": "46"}}) == 0
    es.indices.refresh(index=ready.deadletter)
    reasons = [h["_source"]["deadletter"]["reason"]
               for h in es.search(index=ready.deadletter)["hits"]["hits"]]  # fmt: skip
    assert all("bound to province 01" in r and "names province 46" in r for r in reasons)
