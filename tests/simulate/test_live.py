"""Live mode sends the same records a backfill of the period would, through real sinks: files,
syslog over UDP and HTTP push to a local server."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from soc.errors import SimulationError
from soc.localities import catalogue
from soc.simulate import scenarios
from soc.simulate.formats import to_line
from soc.simulate.live import run_live
from soc.simulate.service import Plan, records
from soc.simulate.sinks import FileSink, HttpPushSink, SyslogSink
from tests.simulate.contract import parse_access, parse_app
from tests.simulate.test_scenarios import ORIGIN

LIVE = Path(__file__).resolve().parents[2] / "scenarios" / "web-attack.yaml"


class Collected(list[bytes]):
    pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, Collected]]:
    got = Collected()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the name http.server dispatches POST requests to
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ingest", got
    server.shutdown()
    server.server_close()


def test_live_run_writes_what_a_backfill_would(
    tmp_path: Path, http_server: tuple[str, Collected], request: pytest.FixtureRequest
) -> None:
    start = ORIGIN + timedelta(hours=10)  # Monday 10:00 local
    found = scenarios.load(LIVE, catalogue(), start)
    plan = Plan(seed=8, provinces=("46",), scenarios=tuple(found))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    request.addfinalizer(udp.close)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(2)
    url, posted = http_server
    files = FileSink(tmp_path / "logs")
    syslog = SyslogSink("127.0.0.1", udp.getsockname()[1])
    request.addfinalizer(syslog.close)
    push = HttpPushSink(url)
    report = run_live(plan, [files, syslog, push], speed=600, tick=0.05, start=start,
                      duration=timedelta(minutes=5))  # fmt: skip
    expected = [to_line(r) for r in records(plan, start, start + timedelta(minutes=5))]
    assert report.records == len(expected) > 100
    assert report.ticks > 3  # it really ran slice by slice

    written: list[str] = []
    manifest = json.loads((tmp_path / "logs" / "manifest.json").read_text())["files"]
    for item in manifest:
        lines = (tmp_path / "logs" / item["path"]).read_text().splitlines()
        parse = parse_access if item["format"] == "access" else parse_app
        for line in lines:
            parse(line)
        written.extend(lines)
    assert sorted(written) == sorted(expected)
    assert any("sqlmap" in line or "Nikto" in line or "nmap" in line.lower() or "zgrab" in line
               for line in written)  # fmt: skip

    app_lines = [line for line in expected if line.startswith("{")]  # access lines go as files
    frames: list[str] = []
    while len(frames) < len(app_lines):
        frames.append(udp.recv(65_535).decode())
    assert frames[0].startswith("<1")
    assert sorted(f.split(" - - - ", 1)[1] for f in frames) == sorted(app_lines)

    pushed = [json.loads(x) for body in posted for x in body.splitlines()]
    assert sorted(p["line"] for p in pushed) == sorted(expected)
    assert {p["province"] for p in pushed} == {"46"}


def test_http_push_retries_a_full_spool_then_gives_up_clearly() -> None:
    answers = [503, 200, 503, 503, 401]
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the name http.server dispatches POST requests to
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(self.headers.get("Authorization"))
            status = answers.pop(0)
            self.send_response(status)
            self.send_header("Retry-After", "0")
            body = b'{"detail": "spool full"}' if status != 200 else b"{}"
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1/push"
        start = ORIGIN + timedelta(hours=10)
        batch = list(records(Plan(seed=1, provinces=("12",)), start, start + timedelta(minutes=5)))
        sink = HttpPushSink(url, token="t0k", attempts=3, sleep=lambda _: None)
        sink.write(batch)  # 503, then accepted
        assert sink.lines == len(batch)
        with pytest.raises(SimulationError, match="401"):
            sink.write(batch)  # 503, 503, then refused: an error naming the status
        assert seen == ["Bearer t0k"] * 5
    finally:
        server.shutdown()
        server.server_close()
