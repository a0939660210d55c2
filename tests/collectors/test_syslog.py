"""Syslog: a false octet count never swallows the frames after it (TCP), the kernel's UDP drops
are counted, and the accounting identity holds exactly over a 10,000-frame fuzz."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable

import orjson
import pytest
from elasticsearch import Elasticsearch
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.flows import Collector
from collectors.sources.framing import Frame, Framer
from soc.es.indices import Indices
from tests.collectors.conftest import count
from tests.collectors.test_sources import NOW, app, identity_holds, wait_for
from tests.conftest import free_port


def message(n: int) -> bytes:
    body = orjson.dumps(app(n)).decode()
    return f"<134>1 {NOW.isoformat()} vn-1 vneid - - - {body}".encode()


def counted(msg: bytes) -> bytes:
    return b"%d %s" % (len(msg), msg)


def frames(data: bytes, step: int, max_frame: int = 4096) -> list[Frame]:
    framer = Framer(max_frame)
    out: list[Frame] = []
    for at in range(0, len(data), step):
        out += framer.feed(data[at : at + step])
    return out + framer.close()


def test_false_octet_count_does_not_swallow_the_next_frames() -> None:
    """The issue's case: 999999999 swallowed 99 of the next 100 valid frames."""
    valid = [message(i) for i in range(100)]
    data = b"999999999 " + message(1000) + b"".join(counted(m) for m in valid)
    for step in (len(data), 1400, 7):
        got = frames(data, step)
        assert [f.data for f in got if f.error is None] == valid
        (broken,) = [f for f in got if f.error]
        assert broken.data == b"999999999 " + message(1000)
        assert broken.error is not None
        assert "octet count 999999999" in broken.error


def test_counts_too_long_or_too_short_and_garbage_resynchronise() -> None:
    a, b, c = message(1), message(2), message(3)
    too_long = b"%d %s" % (len(a) + 40, a) + counted(b)  # takes b's header in: refused
    too_short = b"5 " + a + counted(c)
    garbage = b"random words here " + counted(b) + b"line without pri\n" + c + b"\n"
    got = frames(too_long + too_short + garbage, 3)
    assert [f.data for f in got if f.error is None] == [b, c, b, b"line without pri", c]
    errors = [f for f in got if f.error]
    assert [f.data[:7] for f in errors] == [b"%d <13" % (len(a) + 40), b"5 <134>", b"random "]
    assert all(f.data for f in got)
    assert b"".join(f.data for f in got).count(b"vneid") == 6 * 2  # each message somewhere


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["ok", "line", "huge", "long", "junk"]), max_size=30),
       st.integers(1, 200))  # fmt: skip
def test_frames_do_not_depend_on_how_the_bytes_arrive(kinds: list[str], step: int) -> None:
    data, valid = _stream(kinds, random.Random(step))
    whole = frames(data, len(data) or 1)
    assert frames(data, step) == whole
    assert [f.data for f in whole if f.error is None and f.data in valid] == valid


def _stream(kinds: list[str], rng: random.Random) -> tuple[bytes, list[bytes]]:
    """Bytes of a connection mixing valid and broken frames, and the valid messages in order."""
    parts: list[bytes] = []
    valid: list[bytes] = []
    for n, kind in enumerate(kinds):
        msg = message(rng.randrange(10**6) * 100 + n)
        if kind in ("ok", "line"):
            parts.append(counted(msg) if kind == "ok" else msg + b"\n")
            valid.append(msg)
        elif kind == "huge":
            parts.append(b"999999999 " + msg)
        elif kind == "long":
            parts.append(b"%d %s" % (len(msg) + rng.randrange(1, 300), msg))
        else:
            junk = bytes(rng.choice(b"abcdefghij ,.;:-_=+!?") for _ in range(rng.randrange(1, 80)))
            parts.append(junk + b"\n")
    return b"".join(parts), valid


def test_tcp_fuzz_of_10000_frames_reads_every_valid_one(
    run_collector: Callable[..., Collector], es: Elasticsearch, ready: Indices
) -> None:
    port = free_port()
    c = run_collector([{"id": "tcp", "type": "syslog-tcp", "port": port, "max_frame_kb": 64}])
    rng = random.Random(20)
    kinds = rng.choices(["ok", "line", "huge", "long", "junk"], [60, 20, 5, 5, 10], k=10_000)
    data, valid = _stream(kinds, rng)
    with socket.create_connection(("127.0.0.1", port)) as tcp:
        for at in range(0, len(data), 1 << 15):
            tcp.sendall(data[at : at + (1 << 15)])
    broken = len(kinds) - len(valid)
    wait_for(lambda: c.metrics.get("tcp", "read") >= len(valid) + broken * 0.9, timeout=60)
    wait_for(lambda: c.source("tcp").pending() == 0)
    assert c.stop(drain_timeout=60)
    identity_holds(c, "tcp")
    assert c.metrics.get("tcp", "indexed") == count(es, ready.events)
    assert c.metrics.get("tcp", "deadlettered") == count(es, ready.deadletter)
    assert c.metrics.get("tcp", "dropped") == 0
    # every valid frame is an event of its own (a broken one is a dead letter, or an event
    # of what its count framed: a count that is merely short frames a truncated message)
    ids = [orjson.loads(m[m.index(b"{") :])["request_id"] for m in valid]
    found = sum(
        count(es, ready.events, {"terms": {"http.request.id": ids[at : at + 1000]}})
        for at in range(0, len(ids), 1000)
    )
    assert found == len(valid) == len(set(ids))


@pytest.mark.parametrize("burst", [10_000])
def test_udp_kernel_drops_are_counted_as_dropped(
    run_collector: Callable[..., Collector], es: Elasticsearch, ready: Indices, burst: int
) -> None:
    port = free_port()
    # A small receive buffer so that a burst overflows it (before: dropped 0, 2,934 lost).
    c = run_collector([{"id": "udp", "type": "syslog-udp", "port": port,
                        "receive_buffer_mb": 0.05}])  # fmt: skip
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for n in range(burst):
            udp.sendto(message(n), ("127.0.0.1", port))
    wait_for(lambda: c.metrics.get("udp", "read") == burst, timeout=60)
    assert c.stop(drain_timeout=60)
    identity_holds(c, "udp")
    dropped = c.metrics.get("udp", "dropped")
    assert dropped > 0
    assert count(es, ready.events) == burst - dropped
