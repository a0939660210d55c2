"""The disk spool: every action waits here, in order, until Elasticsearch has acknowledged it.

Segment files ``seg-<n>.spool`` hold *chunks*, one per append (a source's batch). A chunk is a
header line, ``#`` and a JSON object (``n`` records, ``len`` bytes of body, source ``s``, spool
time ``t``, the body offset where each record ``ends``, the positions ``dl`` of dead letters),
then its body: the records exactly as ``_bulk`` takes them, a ``create`` line and the document
line each. So the shipper's request body is the chunks' bodies joined, with no work per record;
only a batch that Elasticsearch partly refused is taken apart (:meth:`Batch.records`). Lines of
the first format (``meta<TAB>document``, one record each, from before chunks) are still read, so
a spool left by an older collector is shipped after an upgrade.

A persisted cursor (``cursor.json``, written atomically: segment, chunk offset, and how many of
that chunk's records are done) says how far the shipper got. Sources write before they
checkpoint their own position, and the shipper moves the cursor only after Elasticsearch
answered for every record of a batch, so a crash anywhere replays records rather than losing
them; deterministic ``_id`` s with ``op_type=create`` make the replay harmless.

The spool is bounded (``max_bytes``): :meth:`Spool.append_encoded` blocks until the shipper frees
space (backpressure on the tailer and TCP), or with ``block=False`` raises :class:`SpoolFull` so
that UDP can count a drop. A new process always writes a new segment; a torn last chunk of an
old segment (a crash mid-write) is skipped because its source never checkpointed past it.
This module must not talk to Elasticsearch.
"""

from __future__ import annotations

import os
import threading
import time
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import BinaryIO, NamedTuple

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
    """Where a reader is: the chunk starting at ``offset`` of ``segment``, its first ``skip``
    records already taken."""

    segment: int
    offset: int
    skip: int = 0


class Part(NamedTuple):
    """Records ``lo`` to ``hi`` (exclusive) of one chunk, all of one source."""

    source_id: str
    spooled_at: float
    body: bytes  # the chunk's whole body
    ends: Sequence[int]  # where each record of the chunk ends in ``body``
    deadletters: frozenset[int]  # positions (in the chunk) of dead-letter records
    lo: int
    hi: int

    def data(self) -> bytes:
        """The ``_bulk`` NDJSON of these records."""
        start = self.ends[self.lo - 1] if self.lo else 0
        end = self.ends[self.hi - 1]
        return self.body if start == 0 and end == len(self.body) else self.body[start:end]


@dataclass(frozen=True)
class Batch:
    """Records read from the spool, in order, as the chunk parts they came in."""

    parts: tuple[Part, ...]
    end: Position
    size: int = 0

    @property
    def count(self) -> int:
        return sum(p.hi - p.lo for p in self.parts)

    def body(self) -> bytes:
        """The whole ``_bulk`` request body."""
        return b"".join(p.data() for p in self.parts)

    def tally(self) -> dict[tuple[str, str], int]:
        """Records per (source, kind), kind ``event`` or ``deadletter``."""
        counts: dict[tuple[str, str], int] = {}
        for p in self.parts:
            letters = sum(1 for i in p.deadletters if p.lo <= i < p.hi)
            for key, n in (((p.source_id, "event"), p.hi - p.lo - letters),
                           ((p.source_id, "deadletter"), letters)):  # fmt: skip
                if n:
                    counts[key] = counts.get(key, 0) + n
        return counts

    def records(self) -> list[Record]:
        """Each record on its own (for a batch Elasticsearch partly refused)."""
        out: list[Record] = []
        for p in self.parts:
            start = p.ends[p.lo - 1] if p.lo else 0
            for i in range(p.lo, p.hi):
                end = p.ends[i]
                head, _, doc = p.body[start:end].partition(b"\n")
                action = orjson.loads(head)["create"]
                kind = "deadletter" if i in p.deadletters else "event"
                index, doc_id = action["_index"], action["_id"]
                out.append(Record(index, doc_id, p.source_id, kind, doc[:-1], p.spooled_at))
                start = end
        return out


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
        """:meth:`append` of chunks already in the spool's format (:func:`encode`): what a
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
        return self.read_from(self._cursor, max_records, max_bytes, wait)

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
        parts: list[Part] = []
        end, taken, size = start, 0, 0
        with self._lock:
            while True:
                more, end, n, used = self._read_locked(end, max_records - taken, max_bytes - size)
                parts.extend(more)
                taken, size = taken + n, size + used
                remaining = deadline - time.monotonic()
                full = taken >= max_records or size >= max_bytes
                if full or remaining <= 0 or self._closed:
                    return Batch(tuple(parts), end, size)
                self._lock.wait(min(remaining, 0.05))

    @property
    def cursor(self) -> Position:
        """Where the acknowledged records end."""
        return self._cursor

    def commit(self, end: Position) -> None:
        """Everything before ``end`` is acknowledged: persist the cursor, free whole segments."""
        with self._lock:
            tmp = self.dir / "cursor.json.tmp"
            body = {"segment": end.segment, "offset": end.offset, "skip": end.skip}
            tmp.write_bytes(orjson.dumps(body))
            tmp.replace(self.dir / "cursor.json")
            old = self._cursor
            self._cursor = end
            if end.segment != old.segment:
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
                parts, at, taken, _used = self._read_locked(at, 1 << 30, 64 * 1024 * 1024)
                if not taken:
                    break
                for p in parts:
                    counts[p.source_id] = counts.get(p.source_id, 0) + p.hi - p.lo
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
    def _read_locked(
        self, start: Position, max_records: int, max_bytes: int
    ) -> tuple[list[Part], Position, int, int]:
        """Parts from ``start`` up to the limits (at least one record when there is one):
        (parts, where they end, records, bytes)."""
        parts: list[Part] = []
        taken = used = 0
        at = start
        for current in [s for s in self._segments() if s >= start.segment]:
            if current != at.segment:
                at = Position(current, 0)
            with (self.dir / _name(current)).open("rb") as fh:
                fh.seek(at.offset)
                for offset, following, chunk in _chunks(fh, at.offset):
                    if taken >= max_records or (used >= max_bytes and taken):
                        return parts, at, taken, used
                    lo = at.skip
                    hi = _fit(chunk.ends, lo, max_records - taken, max_bytes - used)
                    parts.append(chunk._replace(lo=lo, hi=hi))
                    taken += hi - lo
                    used += chunk.ends[hi - 1] - (chunk.ends[lo - 1] if lo else 0)
                    if hi < len(chunk.ends):  # the limits cut this chunk: the rest is next time
                        return parts, Position(current, offset, hi), taken, used
                    at = Position(current, following)
        return parts, at, taken, used

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
            return Position(int(body["segment"]), int(body["offset"]), int(body.get("skip", 0)))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise CollectorError(
                f"spool cursor {path} is unreadable ({exc}); move the spool "
                "directory aside to start over (its records would be resent)"
            ) from None


def _fit(ends: Sequence[int], lo: int, room: int, room_bytes: int) -> int:
    """Where a read that starts at record ``lo`` of a chunk whose records end at ``ends`` stops:
    within ``room`` records and ``room_bytes`` bytes, but at least one record further."""
    base = ends[lo - 1] if lo else 0
    hi = min(len(ends), lo + room)
    return max(lo + 1, bisect_right(ends, base + room_bytes, lo, hi))


def _chunks(fh: BinaryIO, offset: int) -> Iterator[tuple[int, int, Part]]:
    """The whole chunks of a segment from ``offset``: (where each starts, where the next starts,
    the chunk); stops at a torn or still-being-written end."""
    while True:
        head = fh.readline()
        if not head.endswith(b"\n"):
            return  # torn or still being written: not a chunk (yet)
        following = offset + len(head)
        if head.startswith(b"#"):
            meta = orjson.loads(head[1:])
            body = fh.read(meta["len"])
            if len(body) < meta["len"]:
                return
            following += len(body)
            part = Part(meta["s"], float(meta["t"]), body, meta["ends"],
                        frozenset(meta.get("dl", ())), 0, meta["n"])  # fmt: skip
        else:
            part = _first_format(head)
        yield offset, following, part
        offset = following


def _first_format(line: bytes) -> Part:
    """A record of the first spool format (``meta<TAB>document``) as a one-record chunk."""
    meta, _, doc = line.rstrip(b"\n").partition(b"\t")
    m = orjson.loads(meta)
    body = b'{"create":{"_index":"%s","_id":"%s"}}\n%s\n' % (m["i"].encode(), m["d"].encode(), doc)
    letters = frozenset((0,)) if m["k"] == "deadletter" else frozenset()
    return Part(m["s"], float(m["t"]), body, (len(body),), letters, 0, 1)


def _name(seg: int) -> str:
    return f"seg-{seg:012d}.spool"


def encode(actions: Iterable[Action], now: float) -> bytes:
    """Actions as spool chunks (one per run of actions of the same source), spooled at ``now``
    (epoch seconds)."""
    return b"".join(
        _chunk(source, list(group), now)
        for source, group in groupby(actions, key=lambda a: a.source_id)
    )


def _chunk(source_id: str, actions: list[Action], now: float) -> bytes:
    heads: dict[str, bytes] = {}
    records: list[bytes] = []
    ends: list[int] = []
    letters: list[int] = []
    size = 0
    for i, action in enumerate(actions):
        head = heads.get(action.index)
        if head is None:
            head = heads[action.index] = b'{"create":{"_index":"%s","_id":"' % action.index.encode()
        body = action.body if action.body is not None else orjson.dumps(action.document)
        record = b'%s%s"}}\n%s\n' % (head, action.id.encode(), body)
        records.append(record)
        size += len(record)
        ends.append(size)
        if action.kind == "deadletter":
            letters.append(i)
    meta: dict[str, object] = {"n": len(actions), "len": size, "s": source_id, "t": now}
    meta["ends"] = ends
    if letters:
        meta["dl"] = letters
    return b"#" + orjson.dumps(meta) + b"\n" + b"".join(records)
