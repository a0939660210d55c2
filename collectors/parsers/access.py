"""nginx / Apache "combined" access lines (optionally followed by ``$request_time``) → ECS.

The format and its ECS fields are in docs/log-formats.md. Quoted strings may carry nginx's
``\\xHH`` escapes or Apache's ``\\"``: they are unescaped so the event holds what the client sent.
A request line that is not ``METHOD TARGET PROTOCOL`` (scanners send garbage) is kept with the flag
``request_malformed``. A line the strict pattern refuses is repaired when it can be, never
dead-lettered for its quoting alone: a line wrapped in an extra pair of double quotes is unwrapped
(flag ``line_unwrapped``), quotes inside the request or a user agent without its closing quote are
taken by a lenient pattern (flag ``quotes_repaired``); a repaired event keeps the line as written in
``event.original``. This module must not look at the inventory or the clock.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from collectors.models import Parsed
from collectors.parsers.fields import MAX_FIELD, is_ip
from soc.errors import ParseError

# A quoted string with backslash escapes, written as an unrolled loop (no per-character
# alternation): the same strings as ``"((?:[^"\\]|\\.)*)"``, about five times faster.
_Q = r'"([^"\\]*(?:\\.[^"\\]*)*)"'
_LINE = re.compile(
    r"(?P<ip>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    + _Q
    + r" (?P<status>\d{3}) (?P<bytes>\d+|-) "
    + _Q
    + " "
    + _Q
    + r"(?: (?P<rt>\d+(?:\.\d+)?|-))?[ \t]*\r?"
)
#: The repair of a line the strict pattern refused: the request up to the last ``" STATUS SIZE``
#: (scanners put quotes in requests), then optional referrer and user agent, the agent's closing
#: quote optional (a truncated or unbalanced line), and the optional request time.
_LENIENT = re.compile(
    r"(?P<ip>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    r'"(?P<request>.*)" (?P<status>\d{3}) (?P<bytes>\d+|-)'
    r'(?: "(?P<referrer>.*?)"(?: "(?P<agent>.*?)"?)?)?'
    r"(?: (?P<rt>\d+(?:\.\d+)?|-))?[ \t]*\r?"
)
_TIME = re.compile(r"(\d{2})/([A-Za-z]{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})")
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    )
}
_ESCAPE = re.compile(r"\\x([0-9A-Fa-f]{2})|\\(.)")


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)) if m.group(1) else m.group(2), value)


#: Parsed stamps by their text: a busy log repeats each second's stamp on many lines.
_TIMES: dict[str, datetime] = {}
_TIMES_MAX = 4096


def parse_time(value: str) -> datetime:
    stamp = _TIMES.get(value)
    if stamp is None:
        stamp = _parse_time(value)
        if len(_TIMES) >= _TIMES_MAX:
            _TIMES.clear()
        _TIMES[value] = stamp
    return stamp


def _parse_time(value: str) -> datetime:
    found = _TIME.fullmatch(value)
    if found is None:
        raise ParseError(f"time {value[:40]!r}: expected dd/Mon/yyyy:HH:MM:SS +hhmm")
    day, mon, year, hh, mm, ss, sign, oh, om = found.groups()
    month = _MONTHS.get(mon.lower())
    if month is None:
        raise ParseError(f"time {value[:40]!r}: unknown month {mon!r}")
    offset = timedelta(hours=int(oh), minutes=int(om)) * (-1 if sign == "-" else 1)
    try:
        return datetime(
            int(year), month, int(day), int(hh), int(mm), int(ss), tzinfo=timezone(offset)
        )
    except ValueError as exc:
        raise ParseError(f"time {value[:40]!r}: {exc}") from None


def _repair(text: str) -> tuple[re.Match[str], str]:
    """The match of a line the strict pattern refused, and the flag naming the repair.

    A line wrapped in one more pair of double quotes (CSV exports, some public data sets), its
    inner quotes doubled or backslash-escaped or left as they were, is unwrapped; then the lenient
    pattern takes quotes inside the request and an agent whose closing quote is missing."""
    if len(text) > 1 and text[0] == '"' and text.rstrip("\r")[-1] == '"':
        inner = text.rstrip("\r")[1:-1]
        candidates = (inner, inner.replace('""', '"'), inner.replace('\\"', '"'))
        for pattern in (_LINE, _LENIENT):
            for candidate in candidates:
                found = pattern.fullmatch(candidate)
                if found is not None:
                    return found, "line_unwrapped"
    found = _LENIENT.fullmatch(text)
    if found is None:
        raise ParseError("not a combined access log line")
    return found, "quotes_repaired"


def parse_access(text: str) -> Parsed:
    found = _LINE.fullmatch(text)
    repair = None
    if found is None:
        found, repair = _repair(text)
    ip, _ident, user, stamp, request, code, size, referrer, agent, rt = found.groups()
    if "\\" in text:  # escapes are rare: unescape only lines that have one
        user, request = _unescape(user), _unescape(request)
        referrer, agent = _unescape(referrer or ""), _unescape(agent or "")
    status = int(code)
    event: dict[str, Any] = {
        "kind": "event",
        "category": ["web"],
        "type": ["access"],
        "outcome": "failure" if status >= 400 else "success",
    }
    http_request: dict[str, Any] = {}
    response: dict[str, Any] = {"status_code": status}
    http: dict[str, Any] = {"request": http_request, "response": response}
    doc: dict[str, Any] = {"event": event, "http": http}
    flags: tuple[str, ...] = ()
    if repair is not None:  # the line as written stays with the event
        event["original"] = text[:MAX_FIELD]
        flags = (repair,)
    if size != "-":
        response["bytes"] = int(size)
    if rt is not None and rt != "-":
        event["duration"] = round(float(rt) * 1000) * 1_000_000
    doc["source"] = {"ip": ip} if is_ip(ip) else {"address": ip[:MAX_FIELD]}
    if user != "-":
        doc["user"] = {"name": user[:1024]}
    if referrer and referrer != "-":
        http_request["referrer"] = referrer[:MAX_FIELD]
    if agent and agent != "-":
        doc["user_agent"] = {"original": agent[:MAX_FIELD]}
    parts = request.split(" ")
    if len(parts) == 3 and parts[2].startswith("HTTP/"):
        method, target, proto = parts
        http_request["method"] = method[:64]
        http["version"] = proto[5:][:16]
        path, sep, query = target.partition("?")
        url = doc["url"] = {"original": target[:MAX_FIELD], "path": path[:MAX_FIELD]}
        if sep and query:
            url["query"] = query[:MAX_FIELD]
    else:
        flags += ("request_malformed",)
        doc["url"] = {"original": request[:MAX_FIELD]}
    if not http_request:
        del http["request"]
    return Parsed(fields=doc, timestamp=parse_time(stamp), flags=flags)
