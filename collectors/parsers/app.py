"""JSON application lines of the watched systems (docs/log-formats.md) → ECS.

One JSON object per line with ``ts``, ``system``, ``host``, ``level``, ``event``, ``result`` and
optional keys; per-system extra keys map to ``soc.*``. Truncated JSON, a non-object, or a key of the
wrong type is a :class:`ParseError` naming the key. A missing ``ts`` is not an error: the line is
kept with the flag ``timestamp_missing`` (normalisation stamps it with the receive time). Unknown
keys are ignored. This module must not look at the inventory or the clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from collectors.models import Parsed
from collectors.parsers.fields import integer, is_ip, number, put, put_path, text
from soc.errors import ParseError

#: Per-system extra keys → ECS (docs/log-formats.md "per system"); the converter checks the type.
EXTRA_FIELDS: dict[str, tuple[str, str]] = {
    "step": ("soc.vneid.step", "text"),
    "carrier": ("soc.otp.carrier", "text"),
    "purpose": ("soc.otp.purpose", "text"),
    "procedure_code": ("soc.procedure.code", "text"),
    "dossier_id": ("soc.sync.dossier_id", "text"),
    "db": ("soc.db.name", "text"),
    "operation": ("soc.db.operation", "text"),
    "target": ("soc.sync.target", "text"),
    "records": ("soc.sync.records", "integer"),
    "run_id": ("soc.sync.run_id", "text"),
    "units_synced": ("soc.sync.units_synced", "integer"),
    "units_failed": ("soc.sync.units_failed", "integer"),
}
CATEGORIES = {
    "vneid": "authentication",
    "otp-gateway": "authentication",
    "national-db": "database",
    "portal-sync": "network",
}
_OPTIONAL_TEXT = {
    "error_code": "error.code",
    "msg": "message",
    "user": "user.name",
    "request_id": "http.request.id",
    "host": "host.name",
    "level": "log.level",
}
_OUTCOMES = {"success", "failure", "unknown"}
# The dotted names split once, not per line.
_OPTIONAL_TEXT_PATHS = tuple((k, tuple(f.split("."))) for k, f in _OPTIONAL_TEXT.items())
_EXTRA_PATHS = tuple((k, tuple(f.split(".")), kind) for k, (f, kind) in EXTRA_FIELDS.items())
_EXTRA_KEYS = frozenset(EXTRA_FIELDS)


def parse_ts(value: Any) -> datetime:
    raw = text(value, "ts")
    try:
        stamp = datetime.fromisoformat(raw)
    except ValueError:
        raise ParseError(f"ts: {raw[:40]!r} is not an ISO 8601 time") from None
    if stamp.tzinfo is None:
        raise ParseError(f"ts: {raw[:40]!r} has no UTC offset")
    return stamp


def parse_app(line: str) -> Parsed:
    try:
        body = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ParseError(f"expected a JSON object, got {type(body).__name__}")
    return from_object(body)


def from_object(body: dict[str, Any]) -> Parsed:
    """An application event from an already decoded object (JSON line, syslog, HTTP push)."""
    get = body.get
    event: dict[str, Any] = {"kind": "event"}
    doc: dict[str, Any] = {"event": event}
    flags: list[str] = []
    stamp = parse_ts(ts) if (ts := get("ts")) is not None else None
    if stamp is None:
        flags.append("timestamp_missing")
    system = text(named, "system") if (named := get("system")) is not None else None
    if "event" in body:
        event["action"] = text(body["event"], "event").replace("_", "-")[:256]
    if "result" in body:
        result = text(body["result"], "result")
        event["outcome"] = result if result in _OUTCOMES else "unknown"
    event["category"] = [CATEGORIES.get(system or "", "web")]
    for key, field in _OPTIONAL_TEXT_PATHS:
        if (value := get(key)) is not None:
            put_path(doc, field, text(value, key))
    if (ip_value := get("ip")) is not None:
        ip = text(ip_value, "ip")
        put(doc, "source.ip" if is_ip(ip) else "source.address", ip)
    if (latency := get("latency_ms")) is not None:
        nanos = number(latency, "latency_ms") * 1_000_000
        if not -(2**63) < nanos < 2**63:  # event.duration is a long (and inf cannot be rounded)
            raise ParseError("latency_ms: out of range")
        event["duration"] = round(nanos)
    if not _EXTRA_KEYS.isdisjoint(body):
        for key, path, kind in _EXTRA_PATHS:
            if (raw := get(key)) is not None:
                put_path(doc, path, integer(raw, key) if kind == "integer" else text(raw, key))
    return Parsed(
        fields=doc,
        timestamp=stamp,
        host=doc.get("host", {}).get("name"),
        service=system,
        province=text(body["province"], "province") if body.get("province") else None,
        ward=text(body["ward"], "ward") if body.get("ward") else None,
        flags=tuple(flags),
    )
