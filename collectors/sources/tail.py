"""File tail: follow files and globs, survive rotation, resume from persisted offsets.

A file is known by its identity (device, inode), not its name, and its offset is persisted in
``offsets.json`` (atomically) only after the lines before it are in the spool. So:

* rename rotation (``app.log`` → ``app.log.1``, new ``app.log``): the old inode is read to its end
  through the open handle, then the new file from 0;
* copy-truncate (the file shrinks below the offset): read again from 0;
* restart: each still-present inode resumes at its offset (lines after it are re-read at most once
  more, and their deterministic ids make that harmless);
* a partial last line waits for its newline (emitted anyway when its file is rotated away);
* new files (a rotation's new ``app.log``) are found by a glob every ``rescan_interval``.

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
    ) -> None:
        super().__init__(source_id, pipeline)
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
        for watched in self.files.values():
            if watched.handle is not None:
                watched.handle.close()

    def poll(self) -> int:
        """One pass over every matching file; the number of lines read."""
        # Globbing (``**`` walks directories) is the costly part of an idle poll: files are
        # looked for every ``rescan_interval``, while known ones are read at every poll.
        now = time.monotonic()
        if self._present is None or now - self._scanned >= self.rescan_interval:
            self._present, self._scanned = self._discover(), now
        present = self._present
        total = 0
        for identity, watched in list(self.files.items()):
            lines = self._read(watched)
            total += lines
            if identity not in present and not lines:
                watched.idle_polls += 1
                if watched.idle_polls >= 2:  # rotated away and drained
                    self._flush_partial(watched)
                    self._forget(identity)
            else:
                watched.idle_polls = 0
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
            w.offset, w.partial = 0, bytearray()
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
        return self._submit(w, b"".join(chunks))

    def _submit(self, w: _Watched, data: bytes) -> int:
        """Hand the whole lines of ``data`` (read at ``w.offset``) over as one block; what follows
        the last newline waits for the rest (unless it is past the hard cap). Returns once they are
        spooled: only then may poll() persist the offset."""
        now = datetime.now(UTC)
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
        return lines

    def _flush_partial(self, w: _Watched) -> None:
        if w.partial:
            line = RawLine(
                self.id,
                SourceType.FILE,
                bytes(w.partial),
                datetime.now(UTC),
                path=w.path,
                offset=w.offset,
            )
            self.pipeline.submit(self.id, [line], self.parser)
            w.offset += len(w.partial)
            w.partial = bytearray()

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
        return {"files": {w.path: w.offset for w in self.files.values()}}
