"""Which inventory path patterns can route a line: what ``soc collect check`` refuses.

A path pattern of the inventory attributes the lines of the files it matches. It routes nothing
when (each is refused, naming the file and line of the pattern):

* it has a placeholder other than ``{province}``, ``{ward}``, ``{service}`` (a typo: ``{provnice}``
  is matched literally and never matches a real path);
* it gives no service (its system has no ``service:`` and the pattern no ``{service}``), or no
  locality (no ``province:``/``ward:`` and no ``{province}``/``{ward}``): every line it attributes
  is dead-lettered for want of one;
* an earlier pattern is the same (the first match wins: this one is never used);
* the collector tails files, and none of its file sources' globs can match what the pattern
  matches (a relative pattern for absolute paths, another directory).

The overlap of two globs is judged on sample paths of each (``*`` empty or not, ``**/`` no or one
directory): a real overlap is always found that way for the patterns people write. This module
must not read files other than through the config it is given.
"""

from __future__ import annotations

import re

from collectors.config import CollectorConfig, FileSourceSpec
from soc.errors import CollectorConfigError
from soc.inventory import System, path_regex

_BRACED = re.compile(r"\{([^{}/]*)\}")
_KNOWN = {"province", "ward", "service"}
_TOKEN = re.compile(r"\*\*/|\*\*|\*|\?|\{(?:province|ward|service)\}")


def check_routes(config: CollectorConfig) -> list[CollectorConfigError]:
    """Every inventory path pattern that cannot route a line in this collector, with where."""
    globs = [g for s in config.spec.sources if isinstance(s, FileSourceSpec) for g in s.paths]
    problems: list[CollectorConfigError] = []
    seen: dict[str, str] = {}
    for system in config.inventory.systems:
        for n, pattern in enumerate(system.paths):
            key = f"{system.key}.paths.{n}"
            why = _unroutable(system, pattern, globs) or (
                f"is the same as {seen[pattern]}, which matches first" if pattern in seen else None
            )
            seen.setdefault(pattern, key)
            if why is not None:
                line = system.path_lines[n] if n < len(system.path_lines) else None
                message = f"{key}: {pattern!r} routes no line: {why}"
                problems.append(CollectorConfigError(message, system.file, line))
    return problems


def _unroutable(system: System, pattern: str, globs: list[str]) -> str | None:
    unknown = sorted({name for name in _BRACED.findall(pattern) if name not in _KNOWN})
    if unknown:
        return (f"unknown placeholder {{{unknown[0]}}} (known: {{province}}, {{ward}}, "
                "{service})")  # fmt: skip
    if system.service is None and "{service}" not in pattern:
        return f"system {system.id!r} has no service and the pattern no {{service}}"
    if system.locality is None and "{province}" not in pattern and "{ward}" not in pattern:
        return f"system {system.id!r} has no province and the pattern no {{province}}/{{ward}}"
    if globs and not any(_overlap(pattern, g) for g in globs):
        return f"no file source reads such files (its paths: {', '.join(globs)})"
    return None


def _overlap(pattern: str, glob: str) -> bool:
    """Whether some path may match both the inventory ``pattern`` and the source's ``glob``."""
    mine, theirs = path_regex(pattern), path_regex(glob)
    return any(theirs.fullmatch(p) for p in _samples(pattern, _fixed(glob))) or any(
        mine.fullmatch(p) for p in _samples(glob, _fixed(pattern))
    )


def _fixed(pattern: str) -> str:
    """The directories a pattern starts with before its first wildcard (``/var/log/``)."""
    first = _TOKEN.search(pattern)
    head = pattern if first is None else pattern[: first.start()]
    return head[: head.rfind("/") + 1]


def _samples(pattern: str, other: str) -> set[str]:
    """Paths the pattern matches: ``**/`` as no or one directory (or the other pattern's fixed
    directories), ``*`` empty or a letter."""
    out = set()
    for deep in ("", "a/", other, f"{other}a/"):
        for word in ("", "a"):
            fill = {"**/": deep, "**": "a", "*": word, "?": "a"}
            parts = _TOKEN.split(pattern)
            tokens = [fill.get(t, "a") for t in _TOKEN.findall(pattern)]
            out.add("".join(p + t for p, t in zip(parts, [*tokens, ""], strict=True)))
    return out
