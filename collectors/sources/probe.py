"""Health probes: periodic HTTP(S) checks of configured service endpoints, each result an event.

For every target: status code, latency, days left on the TLS certificate (HTTPS with verification),
whether a keyword appears in the first ``max_body_bytes`` of the page; a failure (refused, timeout,
TLS error, wrong status, missing keyword) is an event with ``event.outcome: failure`` and
``error.message``, never an exception. Fields are those of docs/log-formats.md "Health probes".
Checks of one round run one after another (a probe round is small); a target's schedule slips
rather than overlaps. With ``report_every`` a target checked often is reported on change: a check
becomes an event when the target is not up, when its state (up, status code) changed since the
last event, or when its last event is ``report_every`` seconds old, so a 10-second check finds an
outage within 10 s without writing six events a minute per healthy endpoint.
This module must not talk to Elasticsearch.
"""

from __future__ import annotations

import http.client
import logging
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from collectors.base import Pipeline, Source
from collectors.models import RawLine, SourceType
from collectors.parsers import parse_auto
from soc import timeutil
from soc.events.failures import classify
from soc.localities import Locality
from soc.services import Service

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    service: Service
    locality: Locality
    keyword: str | None = None
    expect_status: int = 200


@dataclass(frozen=True)
class Outcome:
    status: int | None
    latency_ms: float
    cert_days_left: int | None
    keyword_found: bool | None
    error: str | None


def check(
    target: Target,
    *,
    timeout: float,
    ca_file: Path | None = None,
    max_body_bytes: int = 1024 * 1024,
) -> Outcome:
    """One HTTP(S) GET of ``target``; every failure is described, never raised."""
    parts = urlsplit(target.url)
    started = time.perf_counter()
    conn: http.client.HTTPConnection
    try:
        if parts.scheme == "https":
            ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
            conn = http.client.HTTPSConnection(
                parts.hostname or "", parts.port, timeout=timeout, context=ctx
            )
        else:
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", path, headers={"User-Agent": "soc-probe/1"})
        # Now, while the socket is open: a "Connection: close" (or HTTP/1.0) response makes
        # getresponse() hand the socket to the response, and the certificate goes with it.
        days = _cert_days(conn)
        resp = conn.getresponse()
        body = resp.read(max_body_bytes)
        latency = (time.perf_counter() - started) * 1000
        conn.close()
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        latency = (time.perf_counter() - started) * 1000
        return Outcome(None, latency, None, None, f"{type(exc).__name__}: {exc}"[:1000])
    found = None if target.keyword is None else target.keyword.encode() in body
    error = None
    if resp.status != target.expect_status:
        error = f"HTTP {resp.status}, expected {target.expect_status}"
    elif found is False:
        error = f"keyword {target.keyword!r} not found on the page"
    return Outcome(resp.status, latency, days, found, error)


def _cert_days(conn: http.client.HTTPConnection) -> int | None:
    sock = getattr(conn, "sock", None)
    if not isinstance(sock, ssl.SSLSocket):
        return None
    cert = sock.getpeercert()
    if not cert or "notAfter" not in cert:
        return None
    expires = ssl.cert_time_to_seconds(str(cert["notAfter"]))
    return int((expires - time.time()) // 86400)


def to_event(target: Target, outcome: Outcome, at: datetime) -> dict[str, Any]:
    probe: dict[str, Any] = {
        "target": target.name,
        "up": outcome.error is None,
        "latency_ms": round(outcome.latency_ms, 3),
    }
    if outcome.cert_days_left is not None:
        probe["cert_days_left"] = outcome.cert_days_left
    if outcome.keyword_found is not None:
        probe["keyword_found"] = outcome.keyword_found
    doc: dict[str, Any] = {
        "@timestamp": timeutil.iso(at),
        "event": {
            "kind": "metric",
            "category": ["web"],
            "type": ["info"],
            "dataset": "probe.http",
            "outcome": "success" if outcome.error is None else "failure",
            "duration": round(outcome.latency_ms * 1_000_000),
        },
        "service": {"name": target.service.value},
        "url": {"full": target.url},
        "soc": {"probe": probe},
        **target.locality.to_ecs(),
    }
    if outcome.status is not None:
        doc["http"] = {"response": {"status_code": outcome.status}}
    if outcome.error is not None:
        doc["error"] = {"message": outcome.error}
    return classify(doc)  # error.type, as the normaliser would set it


class ProbeSource(Source):
    type_name = "probe"

    def __init__(
        self,
        source_id: str,
        pipeline: Pipeline,
        *,
        targets: list[Target],
        interval: float = 60.0,
        timeout: float = 10.0,
        ca_file: Path | None = None,
        report_every: float = 0.0,
    ) -> None:
        super().__init__(source_id, pipeline)
        self.targets = targets
        self.interval = interval
        self.timeout = timeout
        self.ca_file = ca_file
        #: 0: every check is an event; else healthy unchanged targets report this often.
        self.report_every = report_every
        self.rounds = 0
        self.checks = 0
        #: target name -> (up, status code, monotonic time) of its last event.
        self._last: dict[str, tuple[bool, int | None, float]] = {}

    def run(self) -> None:
        self.ready.set()
        while not self.stopping.is_set():
            started = time.monotonic()
            self.probe_round()
            self.stopping.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def probe_round(self) -> None:
        lines = []
        for target in self.targets:
            at = datetime.now(UTC)
            outcome = check(target, timeout=self.timeout, ca_file=self.ca_file)
            self.checks += 1
            if not self._reportable(target, outcome):
                continue
            doc = to_event(target, outcome, at)
            lines.append(RawLine(self.id, SourceType.PROBE, b"", at, document=doc))
        if lines:
            self.pipeline.submit(self.id, lines, parse_auto)
        self.rounds += 1

    def _reportable(self, target: Target, outcome: Outcome) -> bool:
        up, now = outcome.error is None, time.monotonic()
        last = self._last.get(target.name)
        quiet = (
            self.report_every > 0
            and up
            and last is not None
            and last[:2] == (up, outcome.status)
            and now - last[2] < self.report_every
        )
        if not quiet:
            self._last[target.name] = (up, outcome.status, now)
        return not quiet
