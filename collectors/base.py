"""The collector's extension point: a :class:`Source` feeds raw lines into the :class:`Pipeline`.

``Source → Parser → Normaliser → Spool → Shipper``. A source is a small class registered by its
config ``type`` in :data:`SOURCES`; it reads (a file, a socket, an HTTP request, a probe) and
hands :class:`~collectors.models.RawLine` batches to :meth:`Pipeline.submit`, which parses,
normalises and spools them and counts them. ``submit`` returns only once the batch is on disk, so a
source may checkpoint its position after it; it blocks while the spool is full (backpressure), or
with ``block=False`` raises :class:`~collectors.spool.SpoolFull` for UDP to count as dropped.
Sources must not talk to Elasticsearch.
"""

from __future__ import annotations

import logging
import socketserver
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from collectors.metrics import Metrics
from collectors.normalise import Normaliser
from collectors.parsers import Parser
from collectors.spool import Spool, SpoolFull
from collectors.workers import Lines, Normalisers, size
from soc.errors import CollectorError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Submitted:
    events: int
    deadletters: int


class Pipeline:
    """Parse, normalise, spool and count; shared by all sources of one collector (thread-safe).

    Parsing and normalising happen in :class:`~collectors.workers.Normalisers` (worker processes
    when configured, else in the calling thread); spooling and counting here.
    """

    def __init__(
        self,
        normaliser: Normaliser,
        spool: Spool,
        metrics: Metrics,
        normalisers: Normalisers | None = None,
    ) -> None:
        self.normaliser = normaliser
        self.normalisers = normalisers or Normalisers(normaliser)
        self.spool = spool
        self.metrics = metrics
        #: Set once the collector can take lines (its workers started): push sources answer
        #: 503 + Retry-After before.
        self.ready = threading.Event()

    def submit(
        self,
        source_id: str,
        lines: Lines,
        parser: Parser,
        *,
        block: bool = True,
        timeout: float | None = None,
    ) -> Submitted:
        if not size(lines):
            return Submitted(0, 0)
        done = self.normalisers.normalise(lines, parser)
        self.metrics.inc(source_id, "read", done.lines)
        try:
            self.spool.append_encoded(done.records, block=block, timeout=timeout)
        except SpoolFull:
            self.metrics.inc(source_id, "dropped", done.lines)
            raise
        self.metrics.inc(source_id, "spooled", done.events + done.deadletters)
        return Submitted(done.events, done.deadletters)


class Source(ABC):
    """One configured source; :meth:`run` blocks until :meth:`stop` (called from another thread)."""

    #: Registry of source classes by config ``type``.
    SOURCES: ClassVar[dict[str, type[Source]]] = {}
    type_name: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if getattr(cls, "type_name", None):
            Source.SOURCES[cls.type_name] = cls

    def __init__(self, source_id: str, pipeline: Pipeline) -> None:
        self.id = source_id
        self.pipeline = pipeline
        self.stopping = threading.Event()
        self.ready = threading.Event()

    @abstractmethod
    def run(self) -> None: ...

    def stop(self) -> None:
        self.stopping.set()

    def health(self) -> dict[str, Any]:
        """What ``soc collect status`` shows about this source besides its counters."""
        return {}

    def pending(self) -> int:
        """Lines this source holds that are not counted in ``read`` yet (a file's last line
        waiting for its newline, a TCP frame waiting for its bytes)."""
        return 0

    def poll_counters(self) -> None:  # noqa: B027 - a hook; most sources have nothing to poll
        """Bring counters kept outside the collector up to date (the kernel's UDP drops)."""


class ServerSource(Source):
    """A source that is a listening ``socketserver`` (HTTP push, syslog over TCP).

    Subclasses call :meth:`listen` from ``__init__`` with a server made with
    ``bind_and_activate=False``; the server's handlers reach the source as ``self.server.source``.
    The port is bound at once (a taken port fails at start-up, naming the source) but listened on
    only in :meth:`run`, once the collector is ready: before, a client's connection is refused at
    once instead of waiting in the backlog until it times out.
    """

    server: socketserver.TCPServer
    port: int

    def listen(self, server: Callable[[], Any], what: str, host: str, port: int) -> None:
        """Bind now, so a taken port fails at start-up naming the source, not in a thread."""
        self.server = server()
        try:
            self.server.server_bind()
        except OSError as exc:
            self.server.server_close()
            raise CollectorError(
                f"source {self.id}: cannot listen on {what} {host}:{port}: {exc}"
            ) from None
        self.server.source = self  # type: ignore[attr-defined]
        self.port = int(self.server.server_address[1])

    def run(self) -> None:
        self.server.server_activate()
        self.ready.set()
        self.server.serve_forever(poll_interval=0.1)
        self.server.server_close()

    def stop(self) -> None:
        super().stop()
        # shutdown() waits for serve_forever to return: never block the caller on it.
        threading.Thread(target=self.server.shutdown, daemon=True).start()

    def health(self) -> dict[str, Any]:
        return {"port": self.port}
