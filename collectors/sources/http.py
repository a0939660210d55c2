"""HTTP push: systems POST NDJSON batches (or one JSON event) with a per-source token.

``POST /v1/push`` with ``Authorization: Bearer <token>``; the token's SHA-256 is looked up in the
inventory, which says which system (service, locality) is pushing. Each NDJSON line is either an
application event (docs/log-formats.md) or a wrapper ``{"line": "<raw line>", "service": ...,
"province": ..., "ward": ...}`` carrying a raw access/JSON line (what ``soc simulate`` sends).
Answers: 200 with counts once every line is spooled (a line that does not parse is dead-lettered and
counted, not refused), 400 for an empty or non-UTF-8 body, 401 for a missing or unknown token, 413
for a body over ``max_body_bytes``, 503 with ``Retry-After`` while the spool stays full. Errors are
JSON ``{"detail": ...}``; nothing from the request is echoed back unescaped.
With ``require_token: false`` (demos only) unauthenticated pushes are attributed by the wrapper.
This module must not parse log lines itself.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from collectors.base import Pipeline, ServerSource
from collectors.inventory import Attribution, Inventory
from collectors.models import RawLine, SourceType
from collectors.parsers import parse_auto
from collectors.spool import SpoolFull
from soc.errors import LocalityError
from soc.localities import catalogue
from soc.services import Service

log = logging.getLogger(__name__)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("push %s %s", self.address_string(), format % args)

    def do_POST(self) -> None:
        src = self.server.source
        if self.path.split("?")[0].rstrip("/") not in ("/v1/push", "/push"):
            return self._answer(404, {"detail": "not found: POST /v1/push"})
        hint = src.authenticate(self.headers.get("Authorization", ""))
        if hint is None and src.require_token:
            return self._answer(
                401, {"detail": "missing or unknown push token (Authorization: Bearer <token>)"}
            )
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            return self._answer(400, {"detail": "Content-Length is not a number"})
        if length > src.max_body_bytes:
            self.close_connection = True
            return self._answer(
                413, {"detail": f"body of {length} bytes exceeds {src.max_body_bytes}"}
            )
        body = self.rfile.read(length) if length > 0 else b""
        if not body.strip():
            return self._answer(400, {"detail": "empty body: send NDJSON lines or a JSON event"})
        lines = [ln for ln in body.split(b"\n") if ln.strip()]
        raws = [src.raw_line(line, hint, self.client_address[0]) for line in lines]
        try:
            done = src.pipeline.submit(src.id, raws, parse_auto, timeout=src.spool_wait)
        except SpoolFull:
            return self._answer(
                503, {"detail": "collector spool is full; retry later"}, {"Retry-After": "5"}
            )
        self._answer(
            200, {"accepted": len(raws), "events": done.events, "deadlettered": done.deadletters}
        )

    def _answer(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = orjson.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    source: HttpPushSource


class HttpPushSource(ServerSource):
    type_name = "http"

    def __init__(
        self,
        source_id: str,
        pipeline: Pipeline,
        *,
        inventory: Inventory,
        host: str = "127.0.0.1",
        port: int = 8088,
        require_token: bool = True,
        max_body_bytes: int = 16 * 1024 * 1024,
        spool_wait: float = 10.0,
    ) -> None:
        super().__init__(source_id, pipeline)
        self.inventory = inventory
        self.require_token = require_token
        self.max_body_bytes = max_body_bytes
        self.spool_wait = spool_wait
        self.listen(lambda: _Server((host, port), _Handler, False), "http", host, port)

    def authenticate(self, header: str) -> Attribution | None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.inventory.by_token(token.strip())

    def raw_line(self, line: bytes, hint: Attribution | None, peer: str) -> RawLine:
        now = datetime.now(UTC)
        data = line.rstrip(b"\r")
        if data.lstrip().startswith(b'{"line"'):
            try:
                wrapper = orjson.loads(data)
            except orjson.JSONDecodeError:
                wrapper = None
            if isinstance(wrapper, dict) and isinstance(wrapper.get("line"), str):
                data = wrapper["line"].encode("utf-8", "surrogatepass")
                hint = _refine(hint, wrapper)
        return RawLine(self.id, SourceType.HTTP, data, now, peer=peer, hint=hint)


def _refine(hint: Attribution | None, wrapper: dict[str, Any]) -> Attribution | None:
    """Fill what the token's system leaves open from the wrapper; never override the token."""
    service = hint.service if hint else None
    locality = hint.locality if hint else None
    try:
        if service is None and isinstance(wrapper.get("service"), str):
            service = Service(wrapper["service"])
        if locality is None and (wrapper.get("province") or wrapper.get("ward")):
            locality = catalogue().locality(wrapper.get("province"), wrapper.get("ward"))
    except (ValueError, LocalityError):
        pass  # normalisation dead-letters a line it cannot attribute, with the reason
    if service is None and locality is None and hint is None:
        return None
    bound = hint is not None and hint.bound
    return Attribution(hint.system if hint else "push", service, locality, bound)
