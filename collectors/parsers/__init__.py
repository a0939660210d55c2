"""Parsers: bytes of one line → :class:`collectors.models.Parsed`, or :class:`ParseError`.

Each format is one small function registered by name in :data:`PARSERS` (``access``, ``json``,
``syslog``, ``auto``). Parsers must not look at the inventory, the clock or Elasticsearch; they only
say what the line says. Log content is attacker-controlled: parsers never evaluate it, and bound
what they keep.
The ``fields`` a parser returns are fresh dicts owned by the caller: normalisation completes
them in place, so a parser must never return shared or cached dicts.
"""

from __future__ import annotations

from collections.abc import Callable

from collectors.models import Parsed
from collectors.parsers.access import parse_access
from collectors.parsers.app import parse_app
from collectors.parsers.syslog import parse_syslog
from soc.errors import ParseError

Parser = Callable[[str], Parsed]


def parse_auto(text: str) -> Parsed:
    """JSON application line when it starts with ``{``, else a combined access line."""
    return parse_app(text) if text.lstrip().startswith("{") else parse_access(text)


PARSERS: dict[str, Parser] = {
    "access": parse_access,
    "json": parse_app,
    "syslog": parse_syslog,
    "auto": parse_auto,
}


def get(name: str) -> Parser:
    try:
        return PARSERS[name]
    except KeyError:
        raise ParseError(f"unknown parser {name!r} (known: {', '.join(PARSERS)})") from None


__all__ = ["PARSERS", "ParseError", "Parser", "get", "parse_access", "parse_app", "parse_syslog"]
