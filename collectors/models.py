"""The value objects that flow through a collector: raw lines in, ECS documents out.

``RawLine`` is what a source read (bytes, never decoded yet: decoding can fail and that failure is
itself kept), ``RawBlock`` many lines of a file before they are split; ``Parsed`` is what a parser
understood; ``Action`` is one spooled bulk action with its deterministic ``_id``. All immutable:
named tuples, because one of each is made per line and a tuple is built several times faster than
a frozen dataclass. This module must not do I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from soc.inventory import Attribution


class SourceType(StrEnum):
    FILE = "file"
    SYSLOG = "syslog"
    HTTP = "http"
    PROBE = "probe"


class RawLine(NamedTuple):
    """One line (or message, or pushed event) exactly as read."""

    source_id: str
    source_type: SourceType
    data: bytes
    received: datetime
    path: str | None = None
    offset: int | None = None
    peer: str | None = None
    #: Attribution already known from the transport (a push token, push metadata).
    hint: Attribution | None = None
    #: For pre-built events (probes): the document itself, no parsing.
    document: Mapping[str, Any] | None = None
    #: What the source noticed about the line (``line_unterminated``): added to ``soc.flags``.
    flags: tuple[str, ...] = ()
    #: Set when the source already knows the bytes cannot be an event (a broken syslog frame,
    #: a push for another province): the reason of their dead letter.
    error: str | None = None


class RawBlock(NamedTuple):
    """Whole lines of one file as read, split into :class:`RawLine` s where they are parsed (a
    worker process), not in the thread that reads them: ``data`` ends with a newline and its
    first byte is at ``offset`` in ``path``."""

    source_id: str
    data: bytes
    received: datetime
    path: str
    offset: int

    def lines(self) -> list[RawLine]:
        """The block's non-empty lines (a ``\\r`` before the newline dropped), each at its
        offset in the file."""
        source_id, received, path, offset = self.source_id, self.received, self.path, self.offset
        out: list[RawLine] = []
        pos = 0
        for raw in self.data.split(b"\n")[:-1]:
            size = len(raw) + 1
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if raw:
                out.append(RawLine(source_id, SourceType.FILE, raw, received, path, offset + pos))
            pos += size
        return out

    def newlines(self) -> int:
        """How many lines, empty ones included (a bound, cheap)."""
        return self.data.count(b"\n")


class Parsed(NamedTuple):
    """What a parser understood of a line: ECS fields plus the hints normalisation resolves."""

    fields: Mapping[str, Any]
    timestamp: datetime | None
    host: str | None = None
    service: str | None = None
    province: str | None = None
    ward: str | None = None
    flags: tuple[str, ...] = ()


class Action(NamedTuple):
    """One bulk ``create`` of a document into an index, as spooled."""

    index: str  # type: ignore[assignment]  # shadows tuple.index, on purpose
    id: str
    source_id: str
    kind: str  # "event" or "deadletter"
    document: Mapping[str, Any]
    #: ``document`` as the JSON bytes that are spooled and sent (serialised once, when built).
    body: bytes | None = None
