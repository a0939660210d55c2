"""HTTP push: systems POST NDJSON batches (or one JSON event) with a per-source token.

``POST /v1/push`` with ``Authorization: Bearer <token>``; the token's SHA-256 is looked up in the
inventory, which says which system (service, locality) is pushing. Each NDJSON line is either an
application event (docs/log-formats.md) or a wrapper ``{"line": "<raw line>", "service": ...,
"province": ..., "ward": ...}`` carrying a raw access/JSON line (what ``soc simulate`` sends).
Answers: 200 with counts once every line is spooled (a line that does not parse is dead-lettered and
counted, not refused), 400 for an empty body, 401 for a missing or unknown token, 413 for a body
over ``max_body_bytes`` (``Content-Length`` or chunked), 405 with ``Allow: POST`` for other
methods, 503 with ``Retry-After`` until the collector is ready and while the spool stays full.
A token of a provincial system writes only that province's events: a line naming another
province is dead-lettered with the reason, unless the inventory marks the system ``national``.
A client that hangs up is one line in the log. Errors are
JSON ``{"detail": ...}``; nothing from the request is echoed back unescaped.
With ``require_token: false`` (demos only) unauthenticated pushes are attributed by the wrapper.
This module must not parse log lines itself.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from collectors.base import Pipeline, ServerSource
from collectors.models import RawLine, SourceType
from collectors.parsers import parse_auto
from collectors.spool import SpoolFull
from soc.errors import LocalityError
from soc.inventory import Attribution, Inventory
from soc.localities import catalogue
from soc.services import Service

log = logging.getLogger(__name__)


class _TooLarge(Exception):
    pass


class _BadBody(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("push %s %s", self.address_string(), format % args)

    def do_POST(self) -> None:
        src = self.server.source
        if self.path.split("?")[0].rstrip("/") not in ("/v1/push", "/push"):
            return self._answer(404, {"detail": "not found: POST /v1/push"})
        if not src.pipeline.ready.is_set():
            self.close_connection = True
            return self._answer(503, {"detail": "collector starting; retry shortly"},
                                {"Retry-After": "1"})  # fmt: skip
        hint = src.authenticate(self.headers.get("Authorization", ""))
        if hint is None and src.require_token:
            return self._answer(
                401, {"detail": "missing or unknown push token (Authorization: Bearer <token>)"}
            )
        try:
            body = self._body(src.max_body_bytes)
        except _TooLarge as exc:
            self.close_connection = True
            return self._answer(413, {"detail": str(exc)})
        except _BadBody as exc:
            self.close_connection = True
            return self._answer(400, {"detail": str(exc)})
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

    def _body(self, limit: int) -> bytes:
        """The request body, ``Content-Length`` or chunked; :class:`_TooLarge` past ``limit``."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._chunked(limit)
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            raise _BadBody("Content-Length is not a number") from None
        if length > limit:
            raise _TooLarge(f"body of {length} bytes exceeds {limit}")
        return self.rfile.read(length) if length > 0 else b""

    def _chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _BadBody("malformed chunk size in a chunked body") from None
            if size == 0:
                while self.rfile.readline(1024).strip():  # trailers, up to the blank line
                    pass
                return b"".join(parts)
            total += size
            if total > limit:
                raise _TooLarge(f"chunked body exceeds {limit} bytes")
            parts.append(self.rfile.read(size))
            self.rfile.readline(8)  # the CRLF after the chunk

    def _not_allowed(self) -> None:
        self._answer(405, {"detail": f"method {self.command} not allowed: POST /v1/push"},
                     {"Allow": "POST"})  # fmt: skip

    do_GET = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    def do_HEAD(self) -> None:
        self.send_response(405)
        self.send_header("Allow", "POST")
        self.send_header("Content-Length", "0")
        self.end_headers()

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

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (after a 413, mid-answer) is one line in the log, not a
        traceback; anything else still logs its traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            log.info("push client %s went away: %s", client_address[0], error.__class__.__name__)
        else:
            log.exception("push request from %s failed", client_address[0])


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
                error = _foreign(hint, wrapper)
                if error is not None:
                    return RawLine(self.id, SourceType.HTTP, data, now, peer=peer, error=error)
                hint = _refine(hint, wrapper)
        return RawLine(self.id, SourceType.HTTP, data, now, peer=peer, hint=hint)


def _foreign(hint: Attribution | None, wrapper: dict[str, Any]) -> str | None:
    """Why a wrapper may not be written with this token (it names another province), if so."""
    if hint is None or not hint.bound or hint.locality is None:
        return None
    try:
        named = catalogue().locality(wrapper.get("province"), wrapper.get("ward"))
    except (LocalityError, TypeError):
        return None  # no (valid) locality named: the token's own applies
    own = hint.locality.province.code
    if named.province.code == own:
        return None
    return (
        f"push token of system {hint.system!r} is bound to province {own}; the line "
        f"names province {named.province.code} (mark the system national: true to allow it)"
    )


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
