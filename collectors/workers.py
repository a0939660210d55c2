"""Normalise workers: child processes that parse and normalise batches of raw lines.

Parsing and normalising are pure Python (tens of µs a line) and would hold the collector's GIL
against the tailer and the shipper; a worker process does them on another core. A batch goes to
one worker as a pickled :class:`~collectors.models.RawBlock` (a file's lines, split in the worker)
or :class:`~collectors.models.RawLine` s, with the collector's
``event.ingested`` stamp and spool time, and comes back as spool records
(:func:`collectors.spool.encode`) with its counts: the bytes the in-process path makes from the
same inputs (a pure function of them; tested). A caller waits for its batch, so each source's
order, the spool order and the source's checkpoints are what they were without workers.

Failure is visible and loses nothing: a worker that dies (killed, crashed) is an error in the log
and a ``worker_restarts`` count; its batch is normalised in the collector's own process instead
(it was not spooled yet, so it is spooled once), and a new worker is started. Workers read their
work from a pipe and exit at its end of file, so they end with the collector, SIGKILL included.
Small batches (a syslog message, a probe result) and parsers that cannot be pickled stay
in-process: the round trip would cost more than it saves. Until a new worker has started
(imports, catalogue), batches are normalised in-process too, so start-up waits for nothing.

This module must not spool, ship, or read sources.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import pickle
import queue
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from collectors.models import RawBlock, RawLine
from collectors.normalise import Limits, Normaliser
from collectors.parsers import Parser
from collectors.spool import encode
from soc.errors import CollectorError
from soc.es.indices import Indices
from soc.inventory import Inventory
from soc.localities import catalogue
from soc.timeutil import iso

log = logging.getLogger(__name__)

#: Batches smaller than this are normalised in-process (the round trip costs ~1 ms).
MIN_LINES = 64
#: Workers that die before they have started, in a row, before the collector stops starting them.
MAX_FAILED_STARTS = 3
#: Allocations between young-generation collections (CPython's default is 700). A batch of 2,000
#: lines makes ~30,000 short-lived dicts, freed by reference counting; at the default, each
#: batch runs dozens of collections that find nothing to free and promote the batch's live
#: objects towards the full collection (~15% of the collector's CPU, measured).
GC_YOUNG = 50_000


def tune_gc() -> None:
    """Fewer garbage collections for a process that makes many short-lived objects (see
    :data:`GC_YOUNG`); cycles are still collected."""
    young, middle, old = gc.get_threshold()
    if young < GC_YOUNG:
        gc.set_threshold(GC_YOUNG, middle, old)


#: What a source submits: its lines, or a block of a file's lines not split yet.
Lines = Sequence[RawLine] | RawBlock


@dataclass(frozen=True)
class Normalised:
    """A batch made ready for the spool: its records and what they are (``lines`` read, each
    one event or dead letter)."""

    records: bytes
    events: int
    deadletters: int
    lines: int


def normalise_batch(
    normaliser: Normaliser,
    lines: Lines,
    parser: Parser,
    ingested: str,
    spooled_at: float,
) -> Normalised:
    """The one way a batch becomes spool records, in a worker or in the collector."""
    if isinstance(lines, RawBlock):
        lines = lines.lines()
    actions = normaliser.normalise_many(lines, parser, ingested)
    letters = sum(1 for a in actions if a.kind == "deadletter")
    return Normalised(encode(actions, spooled_at), len(actions) - letters, letters, len(lines))


def size(lines: Lines) -> int:
    """How many lines a batch has (a bound for a block: empty lines are counted)."""
    return lines.newlines() if isinstance(lines, RawBlock) else len(lines)


class WorkerDied(CollectorError):
    """A worker process ended while it had (or was about to get) a batch."""


@dataclass(frozen=True)
class _Setup:
    """What a worker needs to build its own :class:`Normaliser` (pickled to it)."""

    inventory: Inventory
    indices: Indices
    collector_id: str
    limits: Limits


class _Worker:
    """One child process and the parent's end of its pipe."""

    def __init__(self, setup: _Setup, name: str) -> None:
        # spawn, not fork: the collector has threads (a forked child could inherit a held lock).
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(theirs, setup), name=name, daemon=True)
        self.process.start()
        # Only the child holds its end now: when it dies, our reads see end of file at once.
        theirs.close()
        self.conn = ours
        self.started = False

    def ready(self) -> bool:
        """Whether the worker has started (without waiting); :class:`WorkerDied` if it died."""
        if not self.started and self.conn.poll(0):
            self._recv()  # its "started" message (or the end of file of a dead worker)
            self.started = True
        return self.started

    def call(self, request: tuple[Any, ...]) -> Normalised:
        try:
            self.conn.send(request)
        except OSError:
            raise self._died() from None
        reply = self._recv()
        if not isinstance(reply, Normalised):
            raise CollectorError(f"normalise worker {self.process.name} answered {reply!r}")
        return reply

    def _recv(self) -> Any:
        # A dead worker's pipe normally reads as end of file; should something else still hold
        # it open, polling with a timeout still notices the death.
        while not self.conn.poll(1.0):
            if not self.process.is_alive():
                raise self._died()
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            raise self._died() from None

    def _died(self) -> WorkerDied:
        self.process.join(2)
        return WorkerDied(
            f"normalise worker {self.process.name} (pid {self.process.pid}) died "
            f"(exit code {self.process.exitcode})"
        )

    def close(self) -> None:
        self.conn.close()  # the worker reads end of file and exits
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


class Normalisers:
    """Where a collector's batches are normalised: ``workers`` child processes, or in-process.

    Thread-safe: each source thread waits for its own batch; with more sources than workers, a
    source waits for a free worker.
    """

    def __init__(self, normaliser: Normaliser, workers: int = 0) -> None:
        self.local = normaliser
        self.workers = workers
        self.restarts = 0
        self._setup = _Setup(
            normaliser.inventory, normaliser.indices, normaliser.collector_id, normaliser.limits
        )
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._picklable: dict[Parser, bool] = {}
        self._serial = 0
        self._closed = False
        self._failed_starts = 0

    def start(self, wait: float = 30.0) -> None:
        """Start the workers and wait (up to ``wait`` s) until they can take batches; one that
        is late is used once it has started (meanwhile batches are normalised here)."""
        if self._all or not self.workers:
            return  # started already
        started = [self._spawn() for _ in range(self.workers)]
        deadline = time.monotonic() + wait
        for worker in started:
            try:
                while not worker.ready() and time.monotonic() < deadline:
                    worker.conn.poll(0.05)
            except WorkerDied as exc:
                worker = self._replace(worker, exc, 0)
            self._idle.put(worker)

    def close(self) -> None:
        """End the workers; batches still coming (a late source) are normalised in-process."""
        with self._lock:
            workers, self._all = self._all, []
            self._closed = True
        for worker in workers:
            worker.close()

    def pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._all if w.process.pid is not None]

    def normalise(self, lines: Lines, parser: Parser) -> Normalised:
        # Both stamps from the collector's clock: a worker's output depends on its input only.
        now = self.local.now()
        ingested, spooled_at = iso(now), now.timestamp()
        worker = self._take(lines, parser)
        if worker is None:
            return normalise_batch(self.local, lines, parser, ingested, spooled_at)
        # Plain tuples: pickling a named tuple goes through Python code, ~8x slower.
        if isinstance(lines, RawBlock):
            payload: tuple[Any, ...] = ("block", tuple(lines))
        else:
            payload = ("lines", [tuple(x) for x in lines])
        try:
            return worker.call((*payload, parser, ingested, spooled_at))
        except WorkerDied as exc:
            worker = self._replace(worker, exc, size(lines))
            return normalise_batch(self.local, lines, parser, ingested, spooled_at)
        finally:
            self._idle.put(worker)

    def _take(self, lines: Lines, parser: Parser) -> _Worker | None:
        """A started worker for this batch, or None to normalise it here."""
        if self._closed or not self.workers or size(lines) < MIN_LINES:
            return None
        if not self._can_send(parser):
            return None
        worker = self._idle.get()
        try:
            if worker.ready():
                return worker
        except WorkerDied as exc:
            worker = self._replace(worker, exc, 0)
        self._idle.put(worker)
        return None

    def _replace(self, worker: _Worker, exc: WorkerDied, lines: int) -> _Worker:
        self.restarts += 1
        batch = f"; its batch of {lines} lines is normalised in the collector" if lines else ""
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)
        worker.conn.close()
        self._failed_starts = 0 if worker.started else self._failed_starts + 1
        if self._closed:  # closing: a batch that was in flight is normalised here, no new worker
            log.error("%s%s", exc, batch)
            return worker
        if self._failed_starts >= MAX_FAILED_STARTS:
            # A worker that cannot even start (a broken install, no memory) will not start next
            # time either: parse here from now on rather than spawn one per batch.
            log.error(
                "%s%s; %d workers in a row died before starting: parsing in the collector's "
                "own process from now on",
                exc,
                batch,
                self._failed_starts,
            )
            self._closed = True
            return worker
        log.error("%s%s; a new worker started", exc, batch)
        return self._spawn()

    def _spawn(self) -> _Worker:
        with self._lock:
            self._serial += 1
            worker = _Worker(self._setup, f"soc-collect-{self._setup.collector_id}-{self._serial}")
            self._all.append(worker)
        return worker

    def _can_send(self, parser: Parser) -> bool:
        known = self._picklable.get(parser)
        if known is None:
            try:
                pickle.dumps(parser)
                known = True
            except (pickle.PicklingError, AttributeError, TypeError):
                known = False
            self._picklable[parser] = known
        return known


def _serve(conn: Connection, setup: _Setup) -> None:
    """A worker's life: build a normaliser, then answer batches until the pipe closes."""
    # Ctrl-C in a terminal reaches the whole process group: the collector handles it (and closes
    # the pipe, which ends this loop); the worker must not die first with a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tune_gc()
    normaliser = Normaliser(setup.inventory, setup.indices, setup.collector_id, setup.limits)
    catalogue()  # loaded before saying "started", not on the first batch
    gc.freeze()  # the catalogue and modules: never garbage, never scanned again
    try:
        conn.send("started")
        while True:
            try:
                kind, rows, parser, ingested, spooled_at = conn.recv()
            except EOFError:
                return  # the collector closed the pipe, or died
            lines: Lines = (
                RawBlock._make(rows) if kind == "block" else [RawLine._make(row) for row in rows]
            )
            conn.send(normalise_batch(normaliser, lines, parser, ingested, spooled_at))
    except OSError:
        return  # the collector went away while we answered
