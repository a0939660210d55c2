"""Normalisation: a raw line and what its parser said → one ECS event, or one dead letter.

Adds what every event carries (``@timestamp`` in UTC, ``event.ingested``, ``event.dataset``,
``service.name``, ``locality.*``, ``soc.source.*``, ``soc.collector.id``) and decides, deliberately,
what happens to bad input:

* invalid UTF-8, lines over ``max_line_bytes``, parse errors, unknown systems and lines with no
  locality become dead letters (raw text or base64 kept, with the stage and reason);
* an unknown locality code inside a JSON line falls back to the inventory's locality, flagged
  ``locality_unknown``;
* a missing timestamp, or one more than ``max_future`` ahead or ``max_age`` old, is replaced by the
  receive time, flagged (``timestamp_missing``/``timestamp_future``/``timestamp_too_old``), the
  original kept in ``soc.original_timestamp``; a source of archived logs (``Limits.archived``)
  keeps its events' own time however old (flag ``imported``), only a stamp before
  :data:`EARLIEST` or past ``max_future`` is replaced;
* a line its source already judged (``RawLine.error``: a broken syslog frame, a push for another
  province) is a dead letter with that reason; the source's flags (``line_unterminated``) are kept;
* an event attributed to a push token bound to a province must name that province (or none).

The ``_id`` of an event from a line is a digest of the line's bytes and of where they came from
(collector, source, file path and offset, attributed system), so replaying a file from its
checkpoint, or a sender resending a message, gives the same ids; a pre-built event (a probe
result) gets :func:`soc.events.service.event_id` of its content without the receive-time stamp.
This module must not do I/O.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar, cast

import orjson

from collectors.models import Action, Parsed, RawLine
from collectors.parsers import Parser
from soc import timeutil
from soc.errors import LocalityError, ParseError
from soc.es.indices import Indices
from soc.events.failures import classify
from soc.events.service import event_id
from soc.inventory import Attribution, Inventory
from soc.localities import Locality, catalogue
from soc.services import Service

DATASETS = {
    Service.VNEID: "vneid.auth",
    Service.OTP: "otp-gateway.sms",
    Service.ONE_STOP_SHOP: "one-stop-shop.app",
    Service.NATIONAL_DB: "national-db.lookup",
    Service.PORTAL_SYNC: "portal-sync.sync",
    Service.PAYMENT: "payment.app",
}
#: Raw text kept in a dead letter; enough to see what went wrong, bounded against 1 MB lines.
MAX_RAW_KEPT = 32 * 1024
#: An archived event stamped before this is clearly invalid (a zeroed clock, a parse slip).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Limits:
    max_line_bytes: int = 256 * 1024
    max_future: timedelta = timedelta(hours=1)
    max_age: timedelta = timedelta(days=365 * 2)
    #: Sources of archived logs (``archived: true``, ``soc collect import``): their events keep
    #: their own ``@timestamp`` however old, are flagged ``imported``, and only a stamp before
    #: :data:`EARLIEST` or past ``max_future`` (clearly invalid) is replaced by the receive time.
    archived: frozenset[str] = frozenset()


class Normaliser:
    """Turns :class:`RawLine` into :class:`Action` (an event or a dead letter).

    Look-ups that depend only on their key (a file's attribution, a named locality, a day's index
    name) are cached per normaliser: the inventory and the catalogue do not change while it runs.
    Each event is serialised once, here; the spool writes those bytes and the shipper sends them.
    """

    def __init__(
        self,
        inventory: Inventory,
        indices: Indices,
        collector_id: str,
        limits: Limits = Limits(),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.inventory = inventory
        self.indices = indices
        self.collector_id = collector_id
        self.limits = limits
        self.now = now
        self._collector = {"id": collector_id}
        self._paths: dict[str, Attribution | None] = {}
        self._named: dict[tuple[str | None, str | None], dict[str, Any] | None] = {}
        self._ecs: dict[Locality, dict[str, Any]] = {}
        self._days: dict[str, str] = {}
        self._sources: dict[tuple[str, str], dict[str, str]] = {}
        self._heads: dict[tuple[str, str | None, str], bytes] = {}

    def normalise_many(
        self, lines: Sequence[RawLine], parser: Parser, ingested: str | None = None
    ) -> list[Action]:
        """:meth:`normalise` of a batch, stamped with one ``event.ingested`` (now, unless given:
        a worker process is given the collector's stamp, so its output does not depend on its
        own clock)."""
        if ingested is None:
            ingested = timeutil.iso(self.now())
        return [self.normalise(line, parser, ingested) for line in lines]

    def normalise(self, raw: RawLine, parser: Parser, ingested: str | None = None) -> Action:
        if ingested is None:
            ingested = timeutil.iso(self.now())
        if raw.document is not None:
            doc = dict(raw.document)
            return self._event(doc, raw, False, ingested, str(doc["@timestamp"]))
        if raw.error is not None:
            return self.deadletter(raw, "read", raw.error, ingested)
        if len(raw.data) > self.limits.max_line_bytes:
            return self.deadletter(
                raw,
                "read",
                f"line of {len(raw.data)} bytes exceeds "
                f"max_line_bytes {self.limits.max_line_bytes}",
                ingested,
            )
        try:
            text = raw.data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return self.deadletter(raw, "decode", f"invalid UTF-8 at byte {exc.start}", ingested)
        if "\x00" in text:
            return self.deadletter(raw, "decode", "NUL byte in line (binary data?)", ingested)
        try:
            parsed = parser(text)
            return self._build(raw, parsed, ingested)
        except ParseError as exc:
            return self.deadletter(raw, "parse", str(exc), ingested)

    def _build(self, raw: RawLine, parsed: Parsed, ingested: str) -> Action:
        found = self._attribution(raw, parsed)
        service = _service(parsed.service, found)
        flags = list(parsed.flags)
        if raw.flags:
            flags += raw.flags
        locality = self._locality(parsed, found, flags)
        if found is not None and found.bound and found.locality is not None:
            self._check_bound(found, locality)
        # A parser's fields are fresh dicts handed over to the caller (collectors/parsers):
        # completed in place, not copied.
        doc = cast(dict[str, Any], parsed.fields)
        event = doc.setdefault("event", {})
        name, access, app, other = _NAMES[service]
        if "access" in event.get("type", ()):
            event["dataset"] = access
        elif "action" in event:
            event["dataset"] = app
        else:
            event["dataset"] = other
        doc["service"] = {"name": name}
        doc["locality"] = locality
        if found is not None:
            doc.setdefault("soc", {})["system"] = found.system
        archived = raw.source_id in self.limits.archived
        if archived:
            flags.append("imported")
        stamp, substituted = self._timestamp(parsed.timestamp, raw.received, flags, doc, archived)
        stamp_text = doc["@timestamp"] = timeutil.iso(stamp)
        if flags:
            doc.setdefault("soc", {})["flags"] = sorted(set(flags))
        return self._event(doc, raw, substituted, ingested, stamp_text)

    def _attribution(self, raw: RawLine, parsed: Parsed) -> Attribution | None:
        if raw.hint is not None:
            return raw.hint
        if raw.path is not None:
            try:
                by_path = self._paths[raw.path]
            except KeyError:
                by_path = _remember(self._paths, raw.path, self.inventory.by_path(raw.path))
            if by_path is not None:
                return by_path
        host = parsed.host or raw.peer
        return self.inventory.by_host(host) if host else None

    def _locality(
        self, parsed: Parsed, found: Attribution | None, flags: list[str]
    ) -> dict[str, Any]:
        """The event's ``locality`` object (cached, shared between events: never mutated)."""
        if parsed.province or parsed.ward:
            key = (parsed.province, parsed.ward)
            try:
                named = self._named[key]
            except KeyError:
                try:
                    named = self._ecs_of(catalogue().locality(parsed.province, parsed.ward))
                except LocalityError:
                    named = None
                _remember(self._named, key, named)
            if named is not None:
                return named
            flags.append("locality_unknown")
        if found is not None and found.locality is not None:
            return self._ecs_of(found.locality)
        raise ParseError(
            "no locality: the line names none (or an unknown one) and the inventory "
            "has no province for this source"
        )

    def _ecs_of(self, locality: Locality) -> dict[str, Any]:
        try:
            return self._ecs[locality]
        except KeyError:
            return _remember(self._ecs, locality, locality.to_ecs()["locality"])

    def _check_bound(self, found: Attribution, locality: dict[str, Any]) -> None:
        """A push token bound to a province writes that province's events only."""
        assert found.locality is not None
        own = self._ecs_of(found.locality)["province"]["code"]
        named = locality["province"]["code"]
        if named != own:
            raise ParseError(
                f"push token of system {found.system!r} is bound to province {own}; the line "
                f"names province {named} (mark the system national: true to allow it)"
            )

    def _timestamp(
        self,
        stamp: datetime | None,
        received: datetime,
        flags: list[str],
        doc: dict[str, Any],
        archived: bool = False,
    ) -> tuple[datetime, bool]:
        if stamp is None:
            return received, True
        if "timestamp_assumed_zone" in flags:  # RFC 3164: no year; take the closest one
            stamp = _closest_year(stamp, received)
        if stamp - received > self.limits.max_future:
            flags.append("timestamp_future")
        elif stamp < EARLIEST or (not archived and received - stamp > self.limits.max_age):
            flags.append("timestamp_too_old")
        else:
            return stamp, False
        doc.setdefault("soc", {})["original_timestamp"] = timeutil.iso(stamp)
        return received, True

    def _event(
        self, doc: dict[str, Any], raw: RawLine, substituted: bool, ingested: str, stamp: str
    ) -> Action:
        classify(doc)  # error.type: the failure class detection groups by
        soc = doc.setdefault("soc", {})
        try:
            soc["source"] = self._sources[raw.source_id, raw.source_type]
        except KeyError:
            soc["source"] = _remember(
                self._sources,
                (raw.source_id, raw.source_type),
                {"id": raw.source_id, "type": raw.source_type.value},
            )
        soc["collector"] = self._collector
        if raw.path is not None:
            log = doc.setdefault("log", {})
            log["file"] = {"path": raw.path}
            log["offset"] = raw.offset
        if raw.document is None:
            ident = self._line_id(raw, doc)
        else:  # a pre-built event (a probe result): the id of its content
            # The id must not depend on when it was made: drop a receive-time stamp from it.
            ident = event_id(
                {k: v for k, v in doc.items() if k != "@timestamp"} if substituted else doc
            )
        doc.setdefault("event", {})["ingested"] = ingested
        return Action(self._index(stamp), ident, raw.source_id, "event", doc, orjson.dumps(doc))

    def _line_id(self, raw: RawLine, doc: dict[str, Any]) -> str:
        """The ``_id`` of an event read from a line: a digest of where the line came from
        (collector, source, file and offset, attributed system) and its bytes, so it does not
        depend on when it was read, nor on how it is normalised (no sorted re-serialisation)."""
        system = doc.get("soc", {}).get("system", "")
        try:
            head = self._heads[raw.source_id, raw.path, system]
        except KeyError:
            head = _remember(
                self._heads,
                (raw.source_id, raw.path, system),
                f"event\0{self.collector_id}\0{raw.source_id}\0{raw.path or ''}\0".encode(),
            )
        offset = b"" if raw.offset is None else b"%d" % raw.offset
        key = b"%s%s\0%s\0%s" % (head, offset, system.encode(), raw.data)
        return hashlib.blake2b(key, digest_size=16).hexdigest()

    def _index(self, stamp: str) -> str:
        """The daily index of an ``@timestamp``; ours end in ``Z``, so the day is its first 10."""
        if len(stamp) == 24 and stamp.endswith("Z"):
            day = stamp[:10]
            try:
                return self._days[day]
            except KeyError:
                return _remember(self._days, day, self.indices.events_for(date.fromisoformat(day)))
        return self.indices.events_for(timeutil.parse(stamp))

    def deadletter(
        self, raw: RawLine, stage: str, reason: str, ingested: str | None = None
    ) -> Action:
        """The dead letter of a line that cannot become an event."""
        kept = raw.data[:MAX_RAW_KEPT]
        letter: dict[str, Any] = {
            "stage": stage,
            "reason": reason[:1000],
            "raw_bytes": len(raw.data),
            "truncated": len(raw.data) > MAX_RAW_KEPT,
        }
        try:
            letter["raw"] = kept.decode("utf-8")
        except UnicodeDecodeError:
            letter["raw"] = kept.decode("utf-8", "replace")
            letter["raw_base64"] = base64.b64encode(kept).decode("ascii")
        doc: dict[str, Any] = {
            "@timestamp": timeutil.iso(raw.received),
            "deadletter": letter,
            "soc": {
                "source": {"id": raw.source_id, "type": raw.source_type.value},
                "collector": {"id": self.collector_id},
            },
            "event": {"ingested": ingested or timeutil.iso(self.now())},
        }
        if raw.path is not None:
            doc["log"] = {"file": {"path": raw.path}, "offset": raw.offset}
        where = f"{raw.source_id}\0{raw.path}\0{raw.offset}\0".encode()
        ident = hashlib.blake2b(where + raw.data, digest_size=16).hexdigest()
        return Action(
            self.indices.deadletter, ident, raw.source_id, "deadletter", doc, orjson.dumps(doc)
        )


#: Per service: its name and its ``event.dataset`` for access, application and other lines.
_NAMES = {
    s: (s.value, f"{s.value}.access", DATASETS.get(s, f"{s.value}.app"), f"{s.value}.log")
    for s in Service
}
#: Services by name (a dict look-up; calling the enum is several times slower).
_BY_NAME = {s.value: s for s in Service}
#: Bound of each look-up cache; past it the cache starts again (a flood of distinct keys).
_CACHE_MAX = 65_536
_K = TypeVar("_K")
_V = TypeVar("_V")


def _remember(cache: dict[_K, _V], key: _K, value: _V) -> _V:
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[key] = value
    return value


def _service(name: str | None, found: Attribution | None) -> Service:
    if name is not None:
        service = _BY_NAME.get(name)
        if service is None:
            known = ", ".join(s.value for s in Service)
            raise ParseError(f"system {name[:60]!r} is not a watched service ({known})")
        return service
    if found is not None and found.service is not None:
        return found.service
    raise ParseError(
        "no service: the line names no system and the inventory has no service for this source"
    )


def _closest_year(stamp: datetime, received: datetime) -> datetime:
    candidates = []
    for year in (received.year - 1, received.year, received.year + 1):
        try:
            candidates.append(stamp.replace(year=year))
        except ValueError:  # 29 February in a common year
            continue
    return min(candidates, key=lambda c: abs(c - received))
