"""Syslog messages, RFC 5424 and RFC 3164 (BSD), → ECS ``log.syslog.*`` and ``message``.

A message body that is a JSON object in the application format is parsed as such (its fields win).
RFC 3164 stamps carry no year and no zone: the year is the one closest to the receive time
(normalisation supplies it) and the zone is Asia/Ho_Chi_Minh (+07:00), where the watched systems
run; such events get the flag ``timestamp_assumed_zone``. A message with no timestamp at all is kept
with ``timestamp_missing``. A message without ``<PRI>`` is a :class:`ParseError`.
This module must not touch sockets or the clock.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from collectors.models import Parsed
from collectors.parsers.app import from_object
from collectors.parsers.fields import MAX_FIELD
from soc.errors import ParseError

ICT = timezone(timedelta(hours=7), "ICT")
FACILITIES = (
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
)
SEVERITIES = (
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "informational",
    "debug",
)
_PRI = re.compile(r"<(\d{1,3})>")
_BSD_TIME = re.compile(r"([A-Z][a-z]{2}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) ")
_TAG = re.compile(r"([^\s\[:]{1,48})(?:\[([^\]]{1,128})\])?: ?")
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    )
}


def _nil(value: str) -> str | None:
    return None if value == "-" else value[:255]


def _structured_data(rest: str) -> tuple[str, str]:
    """Split ``[sd][sd] msg`` after the structured data; ``]`` inside quoted values is data."""
    if rest.startswith("-"):
        return "-", rest[2:] if rest.startswith("- ") else rest[1:]
    i, depth, quoted = 0, 0, False
    while i < len(rest):
        ch = rest[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"' and depth:
            quoted = not quoted
        elif quoted:
            pass
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0 and (i + 1 == len(rest) or rest[i + 1] != "["):
                return rest[: i + 1], rest[i + 2 :]
        i += 1
    raise ParseError("RFC 5424: unterminated structured data")


def _rfc5424(body: str, syslog: dict[str, Any]) -> tuple[datetime | None, str | None, str]:
    parts = body.split(" ", 5)
    if len(parts) < 6:
        raise ParseError("RFC 5424: expected TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD")
    stamp_text, host, app, procid, msgid, rest = parts
    stamp = None
    if stamp_text != "-":
        try:
            stamp = datetime.fromisoformat(stamp_text)
        except ValueError:
            raise ParseError(f"RFC 5424: bad timestamp {stamp_text[:40]!r}") from None
        if stamp.tzinfo is None:
            raise ParseError(f"RFC 5424: timestamp {stamp_text[:40]!r} has no offset")
    for key, value in (("appname", app), ("procid", procid), ("msgid", msgid)):
        if _nil(value) is not None:
            syslog[key] = _nil(value)
    syslog["version"] = 1
    _sd, message = _structured_data(rest)
    return stamp, _nil(host), message.removeprefix("\ufeff")


def _rfc3164(
    body: str, syslog: dict[str, Any], flags: list[str]
) -> tuple[datetime | None, str | None, str]:
    found = _BSD_TIME.match(body)
    if found is None:
        flags.append("timestamp_missing")
        return None, None, body
    mon, day, hh, mm, ss = found.groups()
    if mon not in _MONTHS:
        raise ParseError(f"RFC 3164: unknown month {mon!r}")
    # Year 2000 is a leap year, so 29 Feb parses; normalisation replaces the year.
    stamp = datetime(2000, _MONTHS[mon], int(day), int(hh), int(mm), int(ss), tzinfo=ICT)
    flags.append("timestamp_assumed_zone")
    rest = body[found.end() :]
    host, _, rest = rest.partition(" ")
    tag = _TAG.match(rest)
    if tag is not None:
        syslog["appname"] = tag.group(1)
        if tag.group(2):
            syslog["procid"] = tag.group(2)
        rest = rest[tag.end() :]
    return stamp, host[:255] or None, rest


def parse_syslog(text: str) -> Parsed:
    pri = _PRI.match(text)
    if pri is None:
        raise ParseError("syslog: no <PRI> at the start")
    value = int(pri.group(1))
    if value > 191:
        raise ParseError(f"syslog: PRI {value} out of range 0-191")
    syslog: dict[str, Any] = {
        "facility": {"code": value // 8, "name": FACILITIES[value // 8]},
        "severity": {"code": value % 8, "name": SEVERITIES[value % 8]},
    }
    body = text[pri.end() :].rstrip("\r\n")
    flags: list[str] = []
    if body.startswith("1 "):
        stamp, host, message = _rfc5424(body[2:], syslog)
        if stamp is None:
            flags.append("timestamp_missing")
    else:
        stamp, host, message = _rfc3164(body, syslog, flags)
    if host:
        syslog["hostname"] = host
    return _with_message(syslog, stamp, host, message, flags)


def _with_message(
    syslog: dict[str, Any], stamp: datetime | None, host: str | None, message: str, flags: list[str]
) -> Parsed:
    if message.lstrip().startswith("{"):
        try:
            obj = orjson.loads(message)
        except orjson.JSONDecodeError:
            obj = None
            flags.append("message_json_invalid")
        if isinstance(obj, dict):
            inner = from_object(obj)
            fields = dict(inner.fields)
            fields["log"] = {**fields.get("log", {}), "syslog": syslog}
            if host:
                fields["host"] = {**fields.get("host", {}), "hostname": host}
            return Parsed(
                fields=fields,
                timestamp=inner.timestamp or stamp,
                host=inner.host or host,
                service=inner.service,
                province=inner.province,
                ward=inner.ward,
                flags=tuple(
                    f
                    for f in (*flags, *inner.flags)
                    if not (f == "timestamp_missing" and (inner.timestamp or stamp))
                ),
            )
    plain: dict[str, Any] = {
        "event": {"kind": "event"},
        "log": {"syslog": syslog},
        "message": message[: MAX_FIELD * 4],
    }
    if host:
        plain["host"] = {"hostname": host}
    return Parsed(fields=plain, timestamp=stamp, host=host, flags=tuple(flags))
