"""The fuzz drill of issue 20: every source at once, valid and invalid input mixed with each case
that used to be lost, and for every source exactly
``read = indexed + duplicates + deadlettered + dropped`` (the kernel's UDP drops included), the
file's ``written = read + pending``, and what Elasticsearch holds equal to what was counted."""

from __future__ import annotations

import http.client
import random
import socket
from collections.abc import Callable
from pathlib import Path

import orjson
from elasticsearch import Elasticsearch

from collectors.flows import Collector
from soc.es.indices import Indices
from tests.collectors.conftest import PUSH_TOKEN, count
from tests.collectors.test_sources import access, identity_holds, wait_for
from tests.collectors.test_syslog import _stream, message
from tests.conftest import free_port


def _file_lines(rng: random.Random, n: int) -> tuple[bytes, int]:
    """Access lines, some wrapped in quotes, some with an unbalanced agent, some garbage; the
    last one without its newline. Returns the bytes and the number of lines."""
    out = []
    for i in range(n):
        line = access(i, "d").rstrip(b"\n")
        roll = rng.random()
        if roll < 0.2:
            line = b'"' + line.replace(b'"', b'""') + b'"'
        elif roll < 0.3:
            line = line[: line.rindex(b'"')]  # agent without its closing quote (no rt)
        elif roll < 0.4:
            line = bytes(rng.choice(b"abc xyz[]\"'") for _ in range(rng.randrange(1, 60)))
        elif roll < 0.45:
            line = b"\xff\xfe" + line  # invalid UTF-8
        out.append(line)
    return b"\n".join(out), n


def _push(port: int, body: bytes) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        chunks = iter([body[: len(body) // 2], body[len(body) // 2 :]])  # sent chunked
        conn.request(
            "POST", "/v1/push", body=chunks, headers={"Authorization": f"Bearer {PUSH_TOKEN}"}
        )
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def test_fuzz_drill_every_source_accounts_for_everything(
    run_collector: Callable[..., Collector], es: Elasticsearch, ready: Indices, tmp_path: Path
) -> None:
    rng = random.Random(2026)
    logs = tmp_path / "logs" / "hn"
    logs.mkdir(parents=True)
    udp_port, tcp_port, http_port = free_port(), free_port(), free_port()
    c = run_collector([
        {"id": "file", "type": "file", "paths": [str(logs / "*.log")], "format": "access",
         "poll_interval": 0.05, "partial_settle": 0},
        {"id": "udp", "type": "syslog-udp", "port": udp_port, "receive_buffer_mb": 0.05},
        {"id": "tcp", "type": "syslog-tcp", "port": tcp_port, "max_frame_kb": 64},
        {"id": "push", "type": "http", "port": http_port},
    ])  # fmt: skip
    data, written = _file_lines(rng, 3000)
    (logs / "portal.log").write_bytes(data)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        sent = 0
        for n in range(6000):
            datagram = message(n) if rng.random() < 0.9 else b"garbage %d" % (n % 50)
            udp.sendto(datagram, ("127.0.0.1", udp_port))
            sent += 1
    kinds = rng.choices(["ok", "line", "huge", "long", "junk"], [60, 20, 5, 5, 10], k=3000)
    stream, valid = _stream(kinds, rng)
    with socket.create_connection(("127.0.0.1", tcp_port)) as tcp:
        tcp.sendall(stream)
    event = {"ts": "2026-11-23T09:15:02+07:00", "system": "payment", "province": "01"}
    hanoi = [orjson.dumps(event | {"request_id": f"p{n}"}) for n in range(50)]
    hue = orjson.dumps(event | {"province": "46"})  # not the token's province
    assert _push(http_port, b"\n".join([*hanoi, hue, b"{truncated"])) == 200
    # the last line waits for its newline: pending, not read
    wait_for(lambda: c.metrics.get("file", "read") == written - 1, timeout=60)
    wait_for(lambda: c.source("file").pending() == 1)
    wait_for(lambda: c.metrics.get("udp", "read") == sent, timeout=60)
    wait_for(lambda: c.source("tcp").pending() == 0 and c.metrics.get("tcp", "read") >= len(valid))
    assert c.source("file").pending() == 1
    assert c.stop(drain_timeout=60)
    for source in ("file", "udp", "tcp", "push"):
        identity_holds(c, source)
        stored = count(es, ready.events, {"term": {"soc.source.id": source}})
        letters = count(es, ready.deadletter, {"term": {"soc.source.id": source}})
        assert (stored, letters) == (c.metrics.get(source, "indexed"),
                                     c.metrics.get(source, "deadlettered")), source  # fmt: skip
    assert c.metrics.get("file", "read") + c.source("file").pending() == written
    assert c.metrics.get("file", "deadlettered") < written * 0.2  # repaired lines are events
    assert count(es, ready.events, {"terms": {"soc.flags": ["line_unwrapped", "quotes_repaired"]}})
    assert c.metrics.get("push", "deadlettered") == 2  # Huế's line and the truncated one
    assert c.metrics.get("tcp", "indexed") >= len(valid)
