"""Parse workers: a batch normalised in a worker process is byte for byte what the collector's
own process makes of it; a killed worker is a logged error, its batch is still spooled once, and
a new worker takes the next batch; workers end with their collector."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from collectors.models import Parsed, RawBlock, RawLine, SourceType
from collectors.normalise import Limits, Normaliser
from collectors.parsers import parse_auto, parse_syslog
from collectors.workers import MIN_LINES, Normalisers
from soc.es.indices import Indices
from soc.inventory import Attribution, loads_inventory
from soc.localities import catalogue
from soc.services import Service

TOKEN_SHA = hashlib.sha256(b"t").hexdigest()
INV = f"""
systems:
  - {{id: sim, paths: ["**/{{province}}/{{service}}.app.log", "**/{{province}}/{{service}}.log"]}}
  - {{id: hn, service: web-portal, province: "01", ward: "00070", paths: ["/hn/*"],
      hosts: [portal-hn-01], token_sha256: "{TOKEN_SHA}"}}
"""
AT = datetime(2026, 11, 23, 3, 0, 0, 123456, tzinfo=UTC)


def _normaliser() -> Normaliser:
    return Normaliser(
        loads_inventory(INV), Indices("wk"), "c1", Limits(max_line_bytes=4096), now=lambda: AT
    )


def _mixed(n: int) -> list[RawLine]:
    """Access and JSON lines, and every kind of bad input the normaliser dead-letters."""
    stamp = (AT - timedelta(minutes=3)).strftime("%d/%b/%Y:%H:%M:%S +0000")
    hint = Attribution("hn", Service.WEB_PORTAL, catalogue().locality("01", "00070"))
    out: list[RawLine] = []
    for i in range(n):
        kind = i % 8
        if kind == 0:
            data = (
                f'10.0.{i % 250}.1 - u{i} [{stamp}] "GET /ho-so/{i}?q=\\x41 HTTP/1.1" '
                f'{200 if i % 3 else 404} {i} "-" "Mozilla/5.0" 0.{i % 900:03d}'
            ).encode()
        elif kind == 1:
            data = orjson.dumps(
                {
                    "ts": (AT - timedelta(seconds=i)).isoformat(),
                    "system": "vneid",
                    "event": "login",
                    "result": "failure",
                    "province": "79",
                    "user": "công dân",
                    "latency_ms": i,
                }
            )
        elif kind == 2:
            data = b'{"ts": "2026-11-23T03:00:00Z", "system": "vne'  # truncated JSON
        elif kind == 3:
            data = b"\xff\xfe binary \x00 garbage"
        elif kind == 4:
            data = b"x" * 5000  # over max_line_bytes
        elif kind == 5:
            data = orjson.dumps({"system": "otp-gateway", "event": "otp_send"})  # no ts
        elif kind == 6:
            data = b'{"ts": "1990-01-01T00:00:00Z", "system": "national-db", "province": "zz"}'
        else:
            data = b'10.1.1.1 - - [31/Foo/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-"'
        path = "/logs/79/vneid.app.log" if i % 2 else "/hn/access.log"
        out.append(
            RawLine(
                "src",
                SourceType.FILE if i % 5 else SourceType.HTTP,
                data,
                AT,
                path=path if i % 5 else None,
                offset=i * 300 if i % 5 else None,
                peer=None if i % 5 else "192.0.2.1",
                hint=None if i % 5 else hint,
            )
        )
    return out


def parse_marking_pid(text: str) -> Parsed:
    """``parse_auto``, and the process that ran it in ``labels.pid`` (module level: picklable)."""
    parsed = parse_auto(text)
    return parsed._replace(fields={**parsed.fields, "labels": {"pid": str(os.getpid())}})


def _pids(records: bytes) -> set[str]:
    found = set()
    for line in records.splitlines():
        if line.startswith((b"#", b'{"create"')):
            continue  # a chunk's header, an action line: the documents are the other lines
        doc = orjson.loads(line)
        if "labels" in doc:
            found.add(doc["labels"]["pid"])
    return found


@pytest.fixture
def workers() -> object:
    pool = Normalisers(_normaliser(), workers=1)
    pool.start()
    yield pool
    pool.close()


def test_worker_output_is_byte_identical_to_in_process(workers: Normalisers) -> None:
    here = Normalisers(_normaliser(), workers=0)
    lines = _mixed(400)
    for parser in (parse_syslog, parse_auto):
        there = workers.normalise(lines, parser)
        local = here.normalise(lines, parser)
        assert there.records == local.records
        assert (there.events, there.deadletters) == (local.events, local.deadletters)
    assert (local.events, local.deadletters) == (200, 200)  # parse_auto: both kinds compared
    # ...and it really was the worker's process that parsed them
    assert _pids(workers.normalise(_mixed(200), parse_marking_pid).records) == {
        str(workers.pids()[0])
    }
    # small batches and unpicklable parsers stay here, with the same result
    assert _pids(workers.normalise(_mixed(MIN_LINES - 1), parse_marking_pid).records) == {
        str(os.getpid())
    }
    assert workers.normalise(lines, lambda t: parse_auto(t)).records == local.records
    assert workers.restarts == 0


def test_a_block_of_file_lines_is_split_where_it_is_parsed_with_each_lines_offset(
    workers: Normalisers,
) -> None:
    files = [
        x for x in _mixed(400) if x.source_type is SourceType.FILE and x.path == "/hn/access.log"
    ]
    data = bytearray(b"\n")  # an empty line first: skipped, but its byte counts
    lines = []
    for i, x in enumerate(files):
        end = b"\r\n" if i % 3 == 0 else b"\n"
        lines.append(x._replace(offset=1000 + len(data)))
        data += x.data + end
    block = RawBlock("src", bytes(data), AT, "/hn/access.log", 1000)
    assert block.lines() == lines  # "\r\n" ends a line too; offsets are where each line starts
    assert block.newlines() == len(files) + 1
    here = Normalisers(_normaliser(), workers=0)
    there, local = workers.normalise(block, parse_auto), here.normalise(lines, parse_auto)
    assert there.records == local.records
    assert (there.events, there.deadletters, there.lines) == (
        local.events,
        local.deadletters,
        len(files),
    )
    assert _pids(workers.normalise(block, parse_marking_pid).records) == {str(workers.pids()[0])}


def test_killed_worker_is_a_logged_error_and_its_batch_is_not_lost(
    workers: Normalisers, caplog: pytest.LogCaptureFixture
) -> None:
    expected = Normalisers(_normaliser(), workers=0).normalise(_mixed(300), parse_auto)
    (first,) = workers.pids()
    os.kill(first, signal.SIGKILL)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="collectors.workers"):
        done = workers.normalise(_mixed(300), parse_auto)
    assert time.monotonic() - started < 10  # an error, not a hang
    assert done.records == expected.records  # normalised here instead: nothing lost
    assert workers.restarts == 1
    assert f"pid {first}) died (exit code -9)" in caplog.text
    (second,) = workers.pids()
    assert second != first
    deadline = time.monotonic() + 30
    while _pids(workers.normalise(_mixed(200), parse_marking_pid).records) != {str(second)}:
        assert time.monotonic() < deadline, "the new worker never took a batch"
        time.sleep(0.1)


class LimitsThatKillTheWorker(Limits):
    """Limits that, unpickled in a starting worker, end it (exit code 3) before it starts."""

    def __reduce__(self) -> tuple[object, tuple[int]]:
        return (os._exit, (3,))


def test_workers_that_cannot_start_leave_the_parsing_in_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limits = LimitsThatKillTheWorker(max_line_bytes=4096)
    pool = Normalisers(Normaliser(loads_inventory(INV), Indices("wk"), "c1", limits, lambda: AT), 1)
    expected = Normalisers(_normaliser(), workers=0).normalise(_mixed(300), parse_auto)
    deadline = time.monotonic() + 60
    with caplog.at_level(logging.ERROR, logger="collectors.workers"):
        pool.start(wait=10)
        while pool.restarts < 3:  # each failed start is noticed at a batch, which goes on here
            assert pool.normalise(_mixed(300), parse_auto).records == expected.records
            assert time.monotonic() < deadline, "the failed starts were never noticed"
            time.sleep(0.05)
        for _ in range(3):  # then no more workers are started
            assert pool.normalise(_mixed(300), parse_auto).records == expected.records
    assert pool.restarts == 3
    assert pool.pids() == []
    assert "(exit code 3)" in caplog.text
    assert "3 workers in a row died before starting" in caplog.text
    pool.close()


def test_closing_ends_the_workers(workers: Normalisers) -> None:
    (pid,) = workers.pids()
    workers.close()
    assert not alive(pid)
    assert workers.pids() == []


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
