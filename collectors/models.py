"""The value objects that flow through a collector: raw lines in, ECS documents out.

``RawLine`` is what a source read (bytes, never decoded yet: decoding can fail and that failure is
itself kept); ``Parsed`` is what a parser understood; ``Action`` is one spooled bulk action with its
deterministic ``_id``. All frozen. This module must not do I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from collectors.inventory import Attribution


class SourceType(StrEnum):
    FILE = "file"
    SYSLOG = "syslog"
    HTTP = "http"
    PROBE = "probe"


@dataclass(frozen=True)
class RawLine:
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


@dataclass(frozen=True)
class Parsed:
    """What a parser understood of a line: ECS fields plus the hints normalisation resolves."""

    fields: Mapping[str, Any]
    timestamp: datetime | None
    host: str | None = None
    service: str | None = None
    province: str | None = None
    ward: str | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Action:
    """One bulk ``create`` of a document into an index, as spooled."""

    index: str
    id: str
    source_id: str
    kind: str  # "event" or "deadletter"
    document: Mapping[str, Any] = field(repr=False)
    #: ``document`` as the JSON bytes that are spooled and sent (serialised once, when built).
    body: bytes | None = field(default=None, repr=False, compare=False)
