"""The disk spool: every action waits here, in order, until Elasticsearch has acknowledged it.

Segment files ``seg-<n>.spool`` hold one record per line (``meta<TAB>document``, both JSON, so
a tab can only be the separator). A persisted cursor (``cursor.json``, written atomically) says
how far the shipper got. Sources write before they checkpoint their own position, and the shipper
moves the cursor only after Elasticsearch answered for every record of a batch, so a crash
anywhere replays records rather than losing them; deterministic ``_id`` s with
``op_type=create`` make the replay harmless.

The spool is bounded (``max_bytes``): :meth:`Spool.append` blocks until the shipper frees space
(backpressure on the tailer and TCP), or with ``block=False`` raises :class:`SpoolFull` so that
UDP can count a drop. A new process always writes a new segment; a torn last line of an old
segment (a crash mid-write) is skipped because its source never checkpointed past it.
This module must not talk to Elasticsearch.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import orjson

from collectors.models import Action
from soc.errors import CollectorError


class SpoolFull(CollectorError):
    """The spool is at ``max_bytes`` and the caller asked not to wait."""


class Record(NamedTuple):
    """One spooled action, its document kept as the bytes that go into ``_bulk``."""

    index: str  # type: ignore[assignment]  # shadows tuple.index, on purpose
    id: str
    source_id: str
    kind: str
    document: bytes
    ingested: float


@dataclass(frozen=True)
class Position:
    segment: int
    offset: int


@dataclass(frozen=True)
class Batch:
    records: tuple[Record, ...]
    end: Position
    size: int = 0


class Spool:
    """An on-disk FIFO of actions with a persisted read cursor, shared by threads of one process."""

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int = 512 * 1024 * 1024,
        segment_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._lock = threading.Condition()
        self._cursor = self._load_cursor()
        # Records decoded but not yet committed: a batch filling up is decoded once, not per wait.
        self._buf: list[Record] = []
        self._buf_end = self._cursor
        self._buf_size = 0
        existing = self._segments()
        self._write_seg = max([*existing, self._cursor.segment]) + 1
        self._write_fd = self._open_segment(self._write_seg)
        self._write_off = 0
        self._closed = False

    # ------------------------------------------------------------------ writing
    def append(
        self, actions: Iterable[Action], *, block: bool = True, timeout: float | None = None
    ) -> None:
        """Write actions at the end; wait (or raise :class:`SpoolFull`) while the spool is full."""
        self.append_encoded(encode(actions, time.time()), block=block, timeout=timeout)

    def append_encoded(
        self, data: bytes, *, block: bool = True, timeout: float | None = None
    ) -> None:
        """:meth:`append` of records already in the spool's format (:func:`encode`): what a
        normalise worker process sends back."""
        if not data:
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self.pending_bytes() + len(data) > self.max_bytes and self.pending_bytes() > 0:
                if not block:
                    raise SpoolFull(f"spool {self.dir} is full ({self.max_bytes} bytes)")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise SpoolFull(f"spool {self.dir} stayed full for {timeout}s")
                self._lock.wait(remaining if remaining is not None else 1.0)
                if self._closed:
                    raise CollectorError("spool closed while waiting for space")
            if self._write_off >= self.segment_bytes:
                os.close(self._write_fd)
                self._write_seg += 1
                self._write_fd = self._open_segment(self._write_seg)
                self._write_off = 0
            os.write(self._write_fd, data)
            self._write_off += len(data)
            self._lock.notify_all()

    # ------------------------------------------------------------------ reading
    def read(self, max_records: int, max_bytes: int = 16 * 1024 * 1024, wait: float = 0.0) -> Batch:
        """Up to ``max_records`` records from the cursor; waits up to ``wait`` s to fill a batch."""
        deadline = time.monotonic() + wait
        with self._lock:
            while True:
                if len(self._buf) < max_records and self._buf_size < max_bytes:
                    more = self._read_locked(
                        self._buf_end, max_records - len(self._buf), max_bytes - self._buf_size
                    )
                    self._buf.extend(more.records)
                    self._buf_end = more.end
                    self._buf_size += more.size
                remaining = deadline - time.monotonic()
                full = len(self._buf) >= max_records or self._buf_size >= max_bytes
                if full or remaining <= 0 or self._closed:
                    return Batch(tuple(self._buf), self._buf_end, self._buf_size)
                self._lock.wait(min(remaining, 0.05))

    def read_from(
        self,
        start: Position,
        max_records: int,
        max_bytes: int = 16 * 1024 * 1024,
        wait: float = 0.0,
    ) -> Batch:
        """Like :meth:`read`, from ``start`` rather than the cursor: a shipper reading ahead of
        what Elasticsearch has acknowledged (the cursor still moves only on :meth:`commit`)."""
        deadline = time.monotonic() + wait
        records: list[Record] = []
        end, size = start, 0
        with self._lock:
            while True:
                more = self._read_locked(end, max_records - len(records), max_bytes - size)
                records.extend(more.records)
                end, size = more.end, size + more.size
                remaining = deadline - time.monotonic()
                full = len(records) >= max_records or size >= max_bytes
                if full or remaining <= 0 or self._closed:
                    return Batch(tuple(records), end, size)
                self._lock.wait(min(remaining, 0.05))

    @property
    def cursor(self) -> Position:
        """Where the acknowledged records end."""
        return self._cursor

    def commit(self, end: Position) -> None:
        """Everything before ``end`` is acknowledged: persist the cursor, free whole segments."""
        with self._lock:
            tmp = self.dir / "cursor.json.tmp"
            tmp.write_bytes(orjson.dumps({"segment": end.segment, "offset": end.offset}))
            tmp.replace(self.dir / "cursor.json")
            self._cursor = end
            self._buf, self._buf_end, self._buf_size = [], end, 0
            for seg in self._segments():
                if seg < end.segment:
                    (self.dir / _name(seg)).unlink(missing_ok=True)
            self._lock.notify_all()

    def pending_by_source(self) -> dict[str, int]:
        """Records not yet acknowledged, per source (read once at start-up, for the accounting)."""
        counts: dict[str, int] = {}
        with self._lock:
            at = self._cursor
            while True:
                batch = self._read_locked(at, 10_000, 64 * 1024 * 1024)
                if not batch.records:
                    break
                for record in batch.records:
                    counts[record.source_id] = counts.get(record.source_id, 0) + 1
                at = batch.end
        return counts

    def pending_bytes(self) -> int:
        total = 0
        for seg in self._segments():
            if seg < self._cursor.segment:
                continue
            size = self._size(seg)
            total += size - (self._cursor.offset if seg == self._cursor.segment else 0)
        return max(total, 0)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            os.close(self._write_fd)
            self._lock.notify_all()

    # ------------------------------------------------------------------ internals
    def _read_locked(self, start: Position, max_records: int, max_bytes: int) -> Batch:
        records: list[Record] = []
        seg, off = start.segment, start.offset
        used = 0
        for current in [s for s in self._segments() if s >= seg]:
            if current != seg:
                seg, off = current, 0
            with (self.dir / _name(current)).open("rb") as fh:
                fh.seek(off)
                for line in fh:
                    if not line.endswith(b"\n"):
                        break  # torn or still being written: not a record (yet)
                    records.append(_decode(line))
                    off += len(line)
                    used += len(line)
                    if len(records) >= max_records or used >= max_bytes:
                        return Batch(tuple(records), Position(seg, off), used)
        return Batch(tuple(records), Position(seg, off), used)

    def _segments(self) -> list[int]:
        return sorted(int(p.name[4:-6]) for p in self.dir.glob("seg-*.spool"))

    def _size(self, seg: int) -> int:
        try:
            return (self.dir / _name(seg)).stat().st_size
        except FileNotFoundError:
            return 0

    def _open_segment(self, seg: int) -> int:
        return os.open(self.dir / _name(seg), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)

    def _load_cursor(self) -> Position:
        path = self.dir / "cursor.json"
        if not path.exists():
            return Position(0, 0)
        try:
            body = orjson.loads(path.read_bytes())
            return Position(int(body["segment"]), int(body["offset"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise CollectorError(
                f"spool cursor {path} is unreadable ({exc}); move the spool "
                "directory aside to start over (its records would be resent)"
            ) from None


def _name(seg: int) -> str:
    return f"seg-{seg:012d}.spool"


def encode(actions: Iterable[Action], now: float) -> bytes:
    """Actions as spool records (one line each), spooled at ``now`` (epoch seconds)."""
    return b"".join(_encode(a, now) for a in actions)


def _encode(action: Action, now: float) -> bytes:
    meta = orjson.dumps(
        {"i": action.index, "d": action.id, "s": action.source_id, "k": action.kind, "t": now}
    )
    body = action.body if action.body is not None else orjson.dumps(action.document)
    return meta + b"\t" + body + b"\n"


def _decode(line: bytes) -> Record:
    meta, _, doc = line.rstrip(b"\n").partition(b"\t")
    m = orjson.loads(meta)
    return Record(m["i"], m["d"], m["s"], m["k"], doc, float(m["t"]))
