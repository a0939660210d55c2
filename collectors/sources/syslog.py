"""Syslog listeners: UDP datagrams, and TCP with octet counting or newline framing (RFC 6587).

UDP cannot push back, so when the spool is full a datagram batch is counted as ``dropped`` (and
logged); it is never lost silently. The kernel drops datagrams too when the socket's receive
buffer (``receive_buffer``) is full during a burst: the socket's drop counter (the ``drops`` column
of ``/proc/net/udp`` for its inode) is read every second and at stop, and what it grew by is added
to ``read`` and to ``dropped`` (they reached the host and were lost there). TCP submits blocking:
a full spool stops reading the socket, and the sender's window fills. TCP framing, with its bound
and its resynchronisation after a false octet count, is in :mod:`collectors.sources.framing`.
This module must not parse the messages.
"""

from __future__ import annotations

import logging
import socket
import socketserver
import threading
import time
from datetime import UTC, datetime
from typing import Any

from collectors.base import Pipeline, ServerSource, Source
from collectors.models import RawLine, SourceType
from collectors.parsers import parse_syslog
from collectors.sources.framing import Frame, Framer
from collectors.sources.kernel import KernelDrops, receive_buffer
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
        wanted_buffer: int = 16 * 1024 * 1024,
    ) -> None:
        super().__init__(source_id, pipeline)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.receive_buffer = receive_buffer(self.sock, wanted_buffer)
        try:
            self.sock.bind((host, port))
        except OSError as exc:
            raise CollectorError(
                f"source {source_id}: cannot listen on udp {host}:{port}: {exc}"
            ) from None
        self.port = int(self.sock.getsockname()[1])
        self.sock.settimeout(0.05)
        self.batch = batch
        self._drops = KernelDrops(self.sock)
        self._lock = threading.Lock()

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
            self._close()

    def _close(self) -> None:
        """Read what is still queued in the socket, count the kernel's drops, close."""
        while lines := self._receive():
            try:
                self.pipeline.submit(self.id, lines, parse_syslog, block=False)
            except SpoolFull:
                log.warning("source %s: spool full at stop, %d UDP messages dropped (counted)",
                            self.id, len(lines))  # fmt: skip
        self.poll_counters()
        with self._lock:
            self.sock.close()

    def poll_counters(self) -> None:
        """Count what the kernel dropped since the last look (``read`` and ``dropped``)."""
        with self._lock:
            if self.sock.fileno() < 0:
                return
            grew = self._drops.grew()
        if grew:
            log.warning(
                "source %s: the kernel dropped %d UDP datagrams (receive buffer %d bytes full); "
                "counted as dropped",
                self.id,
                grew,
                self.receive_buffer,
            )
            self.pipeline.metrics.inc(self.id, "read", grew)
            self.pipeline.metrics.inc(self.id, "dropped", grew)

    def health(self) -> dict[str, Any]:
        return {"port": self.port, "receive_buffer": self.receive_buffer}

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


class _Handler(socketserver.BaseRequestHandler):
    server: _TcpServer

    def handle(self) -> None:
        source = self.server.source
        peer = self.client_address[0]
        sock: socket.socket = self.request
        sock.settimeout(0.2)
        framer = Framer(source.max_frame)
        source.framers.add(framer)
        try:
            while not source.stopping.is_set():
                try:
                    data = sock.recv(1 << 16)
                except TimeoutError:
                    source.submit(framer.quiet(), peer)  # the sender paused
                    continue
                except OSError:
                    break
                if not data:
                    break
                source.submit(framer.feed(data), peer)
        finally:
            # The connection ended (or the collector stops): what is left is a last frame
            # or broken bytes, dead-lettered; nothing stays unaccounted for.
            source.submit(framer.close(), peer)
            source.framers.discard(framer)


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    source: SyslogTcpSource


class SyslogTcpSource(ServerSource):
    type_name = "syslog-tcp"

    def __init__(
        self,
        source_id: str,
        pipeline: Pipeline,
        *,
        host: str = "127.0.0.1",
        port: int = 5514,
        max_frame: int = MAX_MESSAGE,
    ) -> None:
        super().__init__(source_id, pipeline)
        self.max_frame = max_frame
        self.framers: set[Framer] = set()
        self.listen(lambda: _TcpServer((host, port), _Handler, False), "tcp", host, port)

    def submit(self, frames: list[Frame], peer: str) -> None:
        """One connection's frames, in order; blocking: a full spool stops that connection's
        reads, TCP flow control does the rest."""
        if not frames:
            return
        now = datetime.now(UTC)
        lines = [
            RawLine(self.id, SourceType.SYSLOG, data, now, peer=peer, error=error)
            for data, error in frames
        ]
        self.pipeline.submit(self.id, lines, parse_syslog)

    def run(self) -> None:
        super().run()
        # Open connections end within their read timeout once stopping: wait for their last
        # frames to be spooled before the collector drains.
        deadline = time.monotonic() + 5
        while self.framers and time.monotonic() < deadline:
            time.sleep(0.05)

    def pending(self) -> int:
        return sum(f.pending() for f in list(self.framers))
