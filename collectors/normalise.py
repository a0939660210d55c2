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
  original kept in ``soc.original_timestamp``.

The ``_id`` is :func:`soc.events.service.event_id` of the event without the receive-time stamp, so
replaying a file from its checkpoint gives the same ids. This module must not do I/O.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from collectors.inventory import Attribution, Inventory
from collectors.models import Action, Parsed, RawLine
from collectors.parsers import Parser
from soc.errors import LocalityError, ParseError
from soc.es.indices import Indices
from soc.events.service import event_id
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


@dataclass(frozen=True)
class Limits:
    max_line_bytes: int = 256 * 1024
    max_future: timedelta = timedelta(hours=1)
    max_age: timedelta = timedelta(days=365 * 2)


class Normaliser:
    """Turns :class:`RawLine` into :class:`Action` (an event or a dead letter)."""

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

    def normalise(self, raw: RawLine, parser: Parser) -> Action:
        if raw.document is not None:
            return self._event(dict(raw.document), raw, substituted=False)
        if len(raw.data) > self.limits.max_line_bytes:
            return self.deadletter(
                raw,
                "read",
                f"line of {len(raw.data)} bytes exceeds "
                f"max_line_bytes {self.limits.max_line_bytes}",
            )
        try:
            text = raw.data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return self.deadletter(raw, "decode", f"invalid UTF-8 at byte {exc.start}")
        if "\x00" in text:
            return self.deadletter(raw, "decode", "NUL byte in line (binary data?)")
        try:
            parsed = parser(text)
            return self._build(raw, parsed)
        except ParseError as exc:
            return self.deadletter(raw, "parse", str(exc))

    def _build(self, raw: RawLine, parsed: Parsed) -> Action:
        found = self._attribution(raw, parsed)
        service = _service(parsed.service, found)
        flags = list(parsed.flags)
        locality = self._locality(parsed, found, flags)
        doc: dict[str, Any] = {
            k: (dict(v) if isinstance(v, dict) else v) for k, v in parsed.fields.items()
        }
        event = doc.setdefault("event", {})
        if "access" in event.get("type", ()):
            event["dataset"] = f"{service.value}.access"
        elif "action" in event:
            event["dataset"] = DATASETS.get(service, f"{service.value}.app")
        else:
            event["dataset"] = f"{service.value}.log"
        doc["service"] = {"name": service.value}
        doc.update(locality.to_ecs())
        if found is not None:
            doc.setdefault("soc", {})["system"] = found.system
        stamp, substituted = self._timestamp(parsed.timestamp, raw.received, flags, doc)
        doc["@timestamp"] = _iso(stamp)
        if flags:
            doc.setdefault("soc", {})["flags"] = sorted(set(flags))
        return self._event(doc, raw, substituted=substituted)

    def _attribution(self, raw: RawLine, parsed: Parsed) -> Attribution | None:
        if raw.hint is not None:
            return raw.hint
        if raw.path is not None and (by_path := self.inventory.by_path(raw.path)) is not None:
            return by_path
        host = parsed.host or raw.peer
        return self.inventory.by_host(host) if host else None

    def _locality(self, parsed: Parsed, found: Attribution | None, flags: list[str]) -> Locality:
        if parsed.province or parsed.ward:
            try:
                return catalogue().locality(parsed.province, parsed.ward)
            except LocalityError:
                flags.append("locality_unknown")
        if found is not None and found.locality is not None:
            return found.locality
        raise ParseError(
            "no locality: the line names none (or an unknown one) and the inventory "
            "has no province for this source"
        )

    def _timestamp(
        self, stamp: datetime | None, received: datetime, flags: list[str], doc: dict[str, Any]
    ) -> tuple[datetime, bool]:
        if stamp is None:
            return received, True
        if "timestamp_assumed_zone" in flags:  # RFC 3164: no year; take the closest one
            stamp = _closest_year(stamp, received)
        if stamp - received > self.limits.max_future:
            flags.append("timestamp_future")
        elif received - stamp > self.limits.max_age:
            flags.append("timestamp_too_old")
        else:
            return stamp, False
        doc.setdefault("soc", {})["original_timestamp"] = _iso(stamp)
        return received, True

    def _event(self, doc: dict[str, Any], raw: RawLine, *, substituted: bool) -> Action:
        soc = doc.setdefault("soc", {})
        soc["source"] = {"id": raw.source_id, "type": raw.source_type.value}
        soc["collector"] = {"id": self.collector_id}
        if raw.path is not None:
            doc.setdefault("log", {})["file"] = {"path": raw.path}
            doc["log"]["offset"] = raw.offset
        # The id must not depend on when the line was read: drop a receive-time stamp from it.
        keyed = {k: v for k, v in doc.items() if not (substituted and k == "@timestamp")}
        ident = event_id(keyed)
        doc.setdefault("event", {})["ingested"] = _iso(self.now())
        stamp = datetime.fromisoformat(str(doc["@timestamp"]).replace("Z", "+00:00"))
        return Action(self.indices.events_for(stamp), ident, raw.source_id, "event", doc)

    def deadletter(self, raw: RawLine, stage: str, reason: str) -> Action:
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
            "@timestamp": _iso(raw.received),
            "deadletter": letter,
            "soc": {
                "source": {"id": raw.source_id, "type": raw.source_type.value},
                "collector": {"id": self.collector_id},
            },
            "event": {"ingested": _iso(self.now())},
        }
        if raw.path is not None:
            doc["log"] = {"file": {"path": raw.path}, "offset": raw.offset}
        where = f"{raw.source_id}\0{raw.path}\0{raw.offset}\0".encode()
        ident = hashlib.blake2b(where + raw.data, digest_size=16).hexdigest()
        return Action(self.indices.deadletter, ident, raw.source_id, "deadletter", doc)


def _service(name: str | None, found: Attribution | None) -> Service:
    if name is not None:
        try:
            return Service(name)
        except ValueError:
            known = ", ".join(s.value for s in Service)
            raise ParseError(f"system {name[:60]!r} is not a watched service ({known})") from None
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


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
