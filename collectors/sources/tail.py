"""File tail: follow files and globs, survive rotation, resume from persisted offsets.

A file is known by its identity (device, inode), not its name, and its offset is persisted in
``offsets.json`` (atomically) only after the lines before it are in the spool. So:

* rename rotation (``app.log`` → ``app.log.1``, new ``app.log``): the old inode is read to its end
  through the open handle, then the new file from 0;
* copy-truncate (the file shrinks below the offset): read again from 0;
* restart: each still-present inode resumes at its offset (lines after it are re-read at most once
  more, and their deterministic ids make that harmless);
* new files (a rotation's new ``app.log``) are found by a glob every ``rescan_interval``.

A last line without its newline is *pending* (:meth:`FileTailSource.pending`, shown by ``soc
collect status``): the writer may still be writing it. It is shipped as it is, flagged
``line_unterminated``, when the file is rotated away or removed, when the file is truncated, when
an import reads the file (:meth:`FileTailSource.finish`), or when it has not changed for
``settle`` seconds (0: never on time alone). It is not shipped at shutdown: its offset is not
persisted, so the next run reads it again. Once shipped, the offset moves past it, so a writer that
later completes the line does not double it: the rest of the line becomes its own line at its own
offset, flagged ``line_continued`` (every byte is shipped once; a line split by a very slow writer
shows as two flagged pieces).

A full spool blocks :meth:`Pipeline.submit`, which stops the reading: that is the backpressure.
This module must not parse lines.
"""

from __future__ import annotations

import glob
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from collectors.base import Pipeline, Source
from collectors.models import RawBlock, RawLine, SourceType
from collectors.parsers import Parser

log = logging.getLogger(__name__)

_CHUNK = 1024 * 1024
#: A "line" longer than this without a newline is cut here (and dead-lettered as too long).
_HARD_LINE_CAP = 32 * 1024 * 1024


@dataclass
class _Watched:
    path: str
    identity: str
    offset: int
    handle: Any = None
    partial: bytearray = field(default_factory=bytearray)
    idle_polls: int = 0
    #: When the pending last line last grew (monotonic seconds).
    partial_since: float = 0.0
    #: A pending line was shipped on settle: what follows it continues that line.
    continued: bool = False


class FileTailSource(Source):
    type_name = "file"

    def __init__(
        self,
        source_id: str,
        pipeline: Pipeline,
        *,
        paths: list[str],
        parser: Parser,
        state_dir: Path,
        poll_interval: float = 0.5,
        batch_lines: int = 2000,
        rescan_interval: float = 1.0,
        settle: float = 10.0,
    ) -> None:
        super().__init__(source_id, pipeline)
        self.settle = settle
        self.patterns = paths
        self.parser = parser
        self.poll_interval = poll_interval
        self.batch_lines = batch_lines
        self.rescan_interval = rescan_interval
        self._present: set[str] | None = None
        self._scanned = 0.0
        self.state_file = state_dir / f"offsets-{source_id}.json"
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.files: dict[str, _Watched] = {}
        self.saved = self._load_offsets()

    def run(self) -> None:
        self.ready.set()
        while not self.stopping.is_set():
            moved = self.poll()
            if not moved:
                self.stopping.wait(self.poll_interval)
        waiting = self.pending()
        if waiting:
            log.info("source %s: %d unterminated last lines pending at stop", self.id, waiting)
        self.close()

    def close(self) -> None:
        for watched in self.files.values():
            if watched.handle is not None:
                watched.handle.close()
                watched.handle = None

    def pending(self) -> int:
        """Last lines held for their newline (read, not yet shipped nor counted in ``read``)."""
        return sum(1 for w in list(self.files.values()) if w.partial)

    def finish(self) -> int:
        """Ship every pending last line (an import: its files are complete); how many."""
        shipped = 0
        for watched in list(self.files.values()):
            shipped += self._flush_partial(watched)
        if shipped:
            self._save_offsets()
        return shipped

    def poll(self) -> int:
        """One pass over every matching file; the number of lines read."""
        # Globbing (``**`` walks directories) is the costly part of an idle poll: files are
        # looked for every ``rescan_interval``, while known ones are read at every poll.
        now = time.monotonic()
        if self._present is None or now - self._scanned >= self.rescan_interval:
            self._present, self._scanned = self._discover(), now
        present = self._present
        total = 0
        settled = now - self.settle if self.settle > 0 else None
        for identity, watched in list(self.files.items()):
            lines = self._read(watched)
            total += lines
            if identity not in present and not lines:
                watched.idle_polls += 1
                if watched.idle_polls >= 2:  # rotated away and drained
                    total += self._flush_partial(watched)
                    self._forget(identity)
                continue
            watched.idle_polls = 0
            if settled is not None and watched.partial and watched.partial_since <= settled:
                total += self._flush_partial(watched, settled=True)
        if total:
            self._save_offsets()
        return total

    def _discover(self) -> set[str]:
        present: set[str] = set()
        for pattern in self.patterns:
            for path in sorted(glob.glob(pattern, recursive=True)):
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    continue
                identity = f"{st.st_dev}:{st.st_ino}"
                present.add(identity)
                if identity not in self.files:
                    offset = int(self.saved.get(identity, {}).get("offset", 0))
                    self.files[identity] = _Watched(path, identity, offset)
        return present

    def _read(self, w: _Watched) -> int:
        """Read what was appended to one file and submit it; the number of lines (a bound)."""
        if w.handle is None:
            try:
                w.handle = open(w.path, "rb")  # noqa: SIM115 - held open across polls on purpose
            except OSError:
                return 0
        size = os.fstat(w.handle.fileno()).st_size
        if size < w.offset + len(w.partial):  # copy-truncate: the file was emptied under us
            log.info("file %s shrank (%d < %d): truncated, reading from 0", w.path, size, w.offset)
            flushed = self._flush_partial(w)  # what was there before is final
            w.offset = 0
            if flushed:
                self._save_offsets()
        w.handle.seek(w.offset + len(w.partial))
        chunks = [bytes(w.partial)]
        lines, pending = 0, len(w.partial)  # lines read, and bytes after the last newline
        while lines < self.batch_lines and pending <= _HARD_LINE_CAP:
            if self.stopping.is_set():
                break
            chunk = w.handle.read(_CHUNK)
            if not chunk:
                break
            chunks.append(chunk)
            newlines = chunk.count(b"\n")
            lines += newlines
            pending = len(chunk) - chunk.rfind(b"\n") - 1 if newlines else pending + len(chunk)
        if len(chunks) == 1:
            return 0
        w.partial_since = time.monotonic()
        return self._submit(w, b"".join(chunks))

    def _submit(self, w: _Watched, data: bytes) -> int:
        """Hand the whole lines of ``data`` (read at ``w.offset``) over as one block; what follows
        the last newline waits for the rest (unless it is past the hard cap). Returns once they are
        spooled: only then may poll() persist the offset."""
        now = datetime.now(UTC)
        first = 0
        if w.continued and (newline := data.find(b"\n")) >= 0:
            # The rest of a line shipped on settle: its own line, flagged, never the whole again.
            w.continued = False
            if newline:
                line = RawLine(self.id, SourceType.FILE, data[:newline].rstrip(b"\r"), now,
                               w.path, w.offset, flags=("line_continued",))  # fmt: skip
                self.pipeline.submit(self.id, [line], self.parser)
            first = newline + 1
            w.offset += first
            data = data[first:]
        end = data.rfind(b"\n") + 1
        block = RawBlock(self.id, data[:end], now, w.path, w.offset)
        lines = block.newlines()
        if lines:
            self.pipeline.submit(self.id, block, self.parser)
        w.partial = bytearray(data[end:])
        w.offset += end
        if len(w.partial) > _HARD_LINE_CAP:
            line = RawLine(self.id, SourceType.FILE, bytes(w.partial), now, w.path, w.offset)
            self.pipeline.submit(self.id, [line], self.parser)
            w.offset += len(w.partial)
            w.partial = bytearray()
            lines += 1
        return lines + (1 if first > 1 else 0)

    def _flush_partial(self, w: _Watched, settled: bool = False) -> int:
        """Ship the pending last line of ``w`` as it is (see the module docstring); 1 or 0."""
        if not w.partial:
            return 0
        data, start = bytes(w.partial).rstrip(b"\r"), w.offset
        w.offset += len(w.partial)
        w.partial = bytearray()
        w.continued = settled
        if not data:
            return 0
        line = RawLine(self.id, SourceType.FILE, data, datetime.now(UTC), w.path, start,
                       flags=("line_unterminated",))  # fmt: skip
        self.pipeline.submit(self.id, [line], self.parser)
        return 1

    def _forget(self, identity: str) -> None:
        watched = self.files.pop(identity)
        if watched.handle is not None:
            watched.handle.close()
        self.saved.pop(identity, None)
        self._save_offsets()

    def _load_offsets(self) -> dict[str, dict[str, Any]]:
        if not self.state_file.exists():
            return {}
        try:
            body = orjson.loads(self.state_file.read_bytes())
        except orjson.JSONDecodeError:
            log.error(
                "offsets file %s is unreadable; reading files from the start", self.state_file
            )
            return {}
        return dict(body.get("files", {}))

    def _save_offsets(self) -> None:
        for identity, w in self.files.items():
            self.saved[identity] = {"path": w.path, "offset": w.offset}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps({"files": self.saved}))
        tmp.replace(self.state_file)

    def health(self) -> dict[str, Any]:
        return {"files": {w.path: w.offset for w in self.files.values()}, "pending": self.pending()}
