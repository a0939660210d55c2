"""Syslog listeners: UDP datagrams, and TCP with octet counting or newline framing (RFC 6587).

UDP cannot push back, so when the spool is full a datagram batch is counted as ``dropped`` (and
logged); it is never lost silently. TCP submits blocking: a full spool stops reading the socket,
and the sender's window fills. A TCP frame is octet-counted when it starts with a digit
(``LEN SP MSG``), newline-framed otherwise. This module must not parse the messages.
"""

from __future__ import annotations

import logging
import socket
import socketserver
from datetime import UTC, datetime

from collectors.base import Pipeline, ServerSource, Source
from collectors.models import RawLine, SourceType
from collectors.parsers import parse_syslog
from collectors.spool import SpoolFull
from soc.errors import CollectorError

log = logging.getLogger(__name__)

MAX_MESSAGE = 256 * 1024


class SyslogUdpSource(Source):
    type_name = "syslog-udp"

    def __init__(
        self,
        source_id: str,
        pipeline: Pipeline,
        *,
        host: str = "127.0.0.1",
        port: int = 5514,
        batch: int = 500,
    ) -> None:
        super().__init__(source_id, pipeline)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            raise CollectorError(
                f"source {source_id}: cannot listen on udp {host}:{port}: {exc}"
            ) from None
        self.port = int(self.sock.getsockname()[1])
        self.sock.settimeout(0.05)
        self.batch = batch

    def run(self) -> None:
        self.ready.set()
        try:
            while not self.stopping.is_set():
                lines = self._receive()
                if not lines:
                    continue
                try:
                    self.pipeline.submit(self.id, lines, parse_syslog, block=False)
                except SpoolFull:
                    log.warning(
                        "source %s: spool full, %d UDP messages dropped (counted)",
                        self.id,
                        len(lines),
                    )
        finally:
            self.sock.close()

    def _receive(self) -> list[RawLine]:
        lines: list[RawLine] = []
        while len(lines) < self.batch:
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                break
            except OSError:
                if self.stopping.is_set():
                    break
                raise
            lines.append(
                RawLine(
                    self.id,
                    SourceType.SYSLOG,
                    data.rstrip(b"\r\n"),
                    datetime.now(UTC),
                    peer=peer[0],
                )
            )
        return lines


class _Handler(socketserver.StreamRequestHandler):
    server: _TcpServer

    def handle(self) -> None:
        source = self.server.source
        peer = self.client_address[0]
        while not source.stopping.is_set():
            frame = self._frame()
            if frame is None:
                return
            line = RawLine(source.id, SourceType.SYSLOG, frame, datetime.now(UTC), peer=peer)
            # Blocking: a full spool stops this read loop, TCP flow control does the rest.
            source.pipeline.submit(source.id, [line], parse_syslog)

    def _frame(self) -> bytes | None:
        first = self.rfile.peek(1)[:1]  # type: ignore[attr-defined]  # a BufferedReader
        if not first:
            return None
        if not first.isdigit():
            line = self.rfile.readline(MAX_MESSAGE + 1)
            return line.rstrip(b"\r\n") if line else None
        length = b""
        while True:
            ch = self.rfile.read(1)
            if not ch:
                return None
            if ch == b" ":
                break
            if not ch.isdigit() or len(length) >= 10:
                # Not a valid octet count after all: take the rest of the line as the message.
                return (length + ch + self.rfile.readline(MAX_MESSAGE)).rstrip(b"\r\n")
            length += ch
        size = int(length)
        # Keep one byte more than the limit so normalisation dead-letters it as too long.
        kept = self.rfile.read(min(size, MAX_MESSAGE + 1))
        remaining = size - len(kept)
        while remaining > 0 and (skipped := self.rfile.read(min(remaining, 1 << 20))):
            remaining -= len(skipped)
        return kept


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    source: SyslogTcpSource


class SyslogTcpSource(ServerSource):
    type_name = "syslog-tcp"

    def __init__(
        self, source_id: str, pipeline: Pipeline, *, host: str = "127.0.0.1", port: int = 5514
    ) -> None:
        super().__init__(source_id, pipeline)
        self.listen(lambda: _TcpServer((host, port), _Handler), "tcp", host, port)
