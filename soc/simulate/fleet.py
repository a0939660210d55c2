"""A mock fleet of service endpoints for the health probes: real HTTP on 127.0.0.1.

One small threaded HTTP server per province (so 34 sockets, not 27,000), serving the province's
systems at ``/<service>/health`` and each commune's web portal at ``/web-portal/<ward code>/``.
Any endpoint can be made ``slow`` (answers after a delay), ``error`` (HTTP 503) or ``down`` (the
connection is closed without an answer), by hand or by the scenarios active at a given time.
``targets()`` lists every endpoint for the probe collector's inventory. This module must not
generate log traffic.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from soc.errors import SimulationError
from soc.localities import catalogue
from soc.services import Service
from soc.simulate.scenarios import Kind, Scenario

log = logging.getLogger(__name__)

KEYWORD = "soc-mock-ok"  # what a probe's keyword check looks for in a healthy page
PROVINCE_SERVICES = tuple(s for s in Service if s is not Service.WEB_PORTAL)


class Mode(StrEnum):
    UP = "up"
    SLOW = "slow"
    ERROR = "error"
    DOWN = "down"


@dataclass(frozen=True)
class State:
    mode: Mode = Mode.UP
    delay: float = 0.0  # seconds, for SLOW


Key = tuple[str, str, str | None]  # province code, service, ward code (web portals only)


class Fleet:
    """The mock endpoints of some provinces (all by default); start, steer, stop."""

    def __init__(self, provinces: tuple[str, ...] = (), *, host: str = "127.0.0.1",
                 base_port: int = 0) -> None:  # fmt: skip
        cat = catalogue()
        self.host = host
        self.codes = [cat.province(p).code for p in provinces] or [p.code for p in cat.provinces]
        self.base_port = base_port
        self._states: dict[Key, State] = {}
        self._lock = threading.Lock()
        self._servers: dict[str, ThreadingHTTPServer] = {}
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        for i, code in enumerate(self.codes):
            port = self.base_port + i if self.base_port else 0
            try:
                server = ThreadingHTTPServer((self.host, port), _handler(self, code))
            except OSError as exc:
                self.stop()
                raise SimulationError(f"mock fleet: cannot listen on {self.host}:{port} "
                                      f"for province {code}: {exc.strerror}") from None  # fmt: skip
            server.daemon_threads = True
            self._servers[code] = server
            thread = threading.Thread(target=server.serve_forever, name=f"fleet-{code}",
                                      kwargs={"poll_interval": 0.2}, daemon=True)  # fmt: skip
            thread.start()
            self._threads.append(thread)
        log.info("mock fleet up provinces=%d", len(self._servers))

    def stop(self) -> None:
        for server in self._servers.values():
            server.shutdown()
            server.server_close()
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> Fleet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ steering
    def port(self, province: str) -> int:
        return int(self._servers[catalogue().province(province).code].server_address[1])

    def url(self, province: str, service: Service, ward: str | None = None) -> str:
        base = f"http://{self.host}:{self.port(province)}"
        if service is Service.WEB_PORTAL:
            if ward is None:
                raise SimulationError("a commune web portal needs a ward code")
            return f"{base}/web-portal/{ward}/"
        return f"{base}/{service.value}/health"

    def set(self, province: str, service: Service, mode: Mode, *, ward: str | None = None,
            delay: float = 0.0) -> None:  # fmt: skip
        key = (catalogue().province(province).code, service.value, ward)
        with self._lock:
            if mode is Mode.UP:
                self._states.pop(key, None)
            else:
                self._states[key] = State(mode, delay)

    def state(self, key: Key) -> State:
        with self._lock:
            return self._states.get(key, State())

    def apply(self, scenarios: tuple[Scenario, ...], now: datetime) -> None:
        """Make the endpoints look as the scenarios active at ``now`` say (others up)."""
        wanted: dict[Key, State] = {}
        for scn in scenarios:
            if not scn.start <= now < scn.end:
                continue
            effect = endpoint_effect(scn)
            if effect is None:
                continue
            key, mode = effect
            if mode is Mode.SLOW:
                wanted[key] = State(mode, slow_delay(scn, now))
            else:
                wanted[key] = State(mode)
        with self._lock:
            self._states = wanted

    def targets(self) -> list[dict[str, Any]]:
        """Every endpoint, for the probe collector's inventory."""
        cat = catalogue()
        out: list[dict[str, Any]] = []
        for code in self.codes:
            for service in PROVINCE_SERVICES:
                out.append({"target": f"{service.value}-{code}", "service": service.value,
                            "province": code, "ward": None, "keyword": KEYWORD,
                            "url": self.url(code, service)})  # fmt: skip
            for ward in cat.wards_of(code):
                out.append({"target": f"web-portal-{ward.code}", "service": "web-portal",
                            "province": code, "ward": ward.code, "keyword": KEYWORD,
                            "url": self.url(code, Service.WEB_PORTAL, ward.code)})  # fmt: skip
        return out


def endpoint_effect(scn: Scenario) -> tuple[Key, Mode] | None:
    """Which endpoint a scenario affects while it runs, and how (None: no endpoint)."""
    code = scn.where.province.code
    if scn.kind is Kind.VNEID_OUTAGE:
        return (code, Service.VNEID.value, None), Mode.DOWN
    if scn.kind is Kind.OSS_5XX_STORM:
        return (code, Service.ONE_STOP_SHOP.value, None), Mode.ERROR
    if scn.kind is Kind.COMMUNE_SILENT and scn.where.ward is not None:
        return (code, Service.WEB_PORTAL.value, scn.where.ward.code), Mode.DOWN
    if scn.kind is Kind.SLOW_DEGRADATION and scn.service is not None:
        return (code, scn.service.value, None), Mode.SLOW
    return None


def slow_delay(scn: Scenario, now: datetime) -> float:
    """Seconds a slowly degrading endpoint takes to answer at ``now``."""
    progress = (now - scn.start) / (scn.end - scn.start)
    return 0.05 * (1 + (scn.spec.max_factor - 1) * progress)


def _handler(fleet: Fleet, province: str) -> type[BaseHTTPRequestHandler]:
    services = {s.value for s in PROVINCE_SERVICES}

    class Handler(BaseHTTPRequestHandler):
        server_version = "soc-mock/1"

        def do_GET(self) -> None:  # the name http.server dispatches GET requests to
            key = _route(self.path, province, services)
            if key is None:
                self._send(404, "not found")
                return
            state = fleet.state(key)
            if state.mode is Mode.DOWN:
                self.close_connection = True  # no answer at all, like a dead upstream
                self.connection.close()
                return
            if state.mode is Mode.SLOW:
                time.sleep(state.delay)
            if state.mode is Mode.ERROR:
                self._send(503, "service unavailable")
                return
            self._send(200, f"<html><body>{KEYWORD} {key[1]}</body></html>")

        def _send(self, status: int, body: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # probes hit these every few seconds; their access log would be noise

    return Handler


def _route(path: str, province: str, services: set[str]) -> Key | None:
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if len(parts) == 2 and parts[0] in services and parts[1] == "health":
        return (province, parts[0], None)
    if len(parts) == 2 and parts[0] == Service.WEB_PORTAL.value and parts[1].isdigit():
        ward = parts[1]
        if any(w.code == ward for w in catalogue().wards_of(province)):
            return (province, parts[0], ward)
    return None
