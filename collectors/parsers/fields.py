"""Small shared field conversions of the parsers: bounded strings, IPs, nested ECS puts.

Kept apart so the access, JSON and syslog parsers convert the same way. Must not parse lines.
"""

from __future__ import annotations

import ipaddress
import math
import socket
from typing import Any

from soc.errors import ParseError

#: Longest string kept in one field; ES would ignore longer keywords anyway (ignore_above 8191).
MAX_FIELD = 8191


def put(doc: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested document."""
    *parents, leaf = dotted.split(".")
    for part in parents:
        doc = doc.setdefault(part, {})
    doc[leaf] = value


def put_path(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """:func:`put` with the name already split."""
    *parents, leaf = path
    for part in parents:
        inner = doc.get(part)
        if inner is None:
            inner = doc[part] = {}
        doc = inner
    doc[leaf] = value


def text(value: Any, key: str) -> str:
    """A scalar as a bounded string; a nested object or list is a parse error naming ``key``."""
    if type(value) is str:  # the common case first
        return value[:MAX_FIELD]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)[:MAX_FIELD]
    raise ParseError(f"{key}: expected a string, got {type(value).__name__}")


def number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParseError(f"{key}: expected a number, got {type(value).__name__}")
    try:
        result = float(value)
    except OverflowError:  # an integer beyond any float
        raise ParseError(f"{key}: number out of range") from None
    if not math.isfinite(result):
        raise ParseError(f"{key}: not a finite number")
    return result


def integer(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParseError(f"{key}: expected an integer, got {type(value).__name__}")
    if not -(2**63) <= value < 2**63:
        raise ParseError(f"{key}: integer out of range")
    return value


def is_ip(value: str) -> bool:
    """What :func:`ipaddress.ip_address` accepts; IPv4 (the common case) checked in C."""
    try:
        socket.inet_pton(socket.AF_INET, value)
    except (OSError, ValueError):  # ValueError: NUL or non-ASCII characters
        if ":" not in value:
            return False
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return False
    return True
