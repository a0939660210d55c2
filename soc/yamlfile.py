"""Load a YAML file keeping where each key sits, so validation errors name file and line.

Collector configurations and inventories are written by hand; an error that says only "invalid"
costs an afternoon. :func:`load` returns the plain data plus a :class:`Locator` that maps a pydantic
error location (``("sources", 2, "port")``) back to the line of that key. This module must not
know what the keys mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from soc.errors import CollectorConfigError


@dataclass(frozen=True)
class Locator:
    """Line numbers (1-based) of every mapping key and sequence item of one YAML file."""

    path: str
    lines: dict[tuple[str | int, ...], int] = field(default_factory=dict)

    def resolve(self, loc: Sequence[Any]) -> tuple[tuple[str | int, ...], int | None]:
        """The file's own key path for a validation ``loc`` and the line of its deepest part.

        A part the file lacks is either a union's tag (``syslog-udp``, more parts follow: left
        out) or a missing key (the last part: named, located at its parent).
        """
        parts = [p for p in loc if isinstance(p, str | int)]
        key: tuple[str | int, ...] = ()
        line = self.lines.get(())
        for n, part in enumerate(parts):
            candidate = (*key, part)
            if candidate in self.lines:
                key, line = candidate, self.lines[candidate]
            elif n == len(parts) - 1:
                key = candidate
        return key, line

    def line(self, loc: Sequence[Any]) -> int | None:
        return self.resolve(loc)[1]

    def error(self, exc: ValidationError, base: tuple[str | int, ...] = ()) -> CollectorConfigError:
        """A :class:`CollectorConfigError` naming the first problem's key and line (and others')."""
        found: list[tuple[int | None, str, str]] = []
        for problem in exc.errors()[:5]:
            path, at = self.resolve((*base, *problem["loc"]))
            found.append((at, ".".join(str(p) for p in path) or "(top level)", problem["msg"]))
        line, name, msg = found[0]
        others = "; ".join(f"line {ln}: {k}: {m}" for ln, k, m in found[1:])
        more = f" (also {others})" if others else ""
        return CollectorConfigError(f"{name}: {msg}{more}", self.path, line)


def load(path: Path) -> tuple[Any, Locator]:
    """Parse ``path``; a syntax error becomes a :class:`CollectorConfigError` with its line."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CollectorConfigError(f"cannot read: {exc}", str(path)) from None
    return loads(text, str(path))


def loads(text: str, name: str = "<string>") -> tuple[Any, Locator]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise CollectorConfigError(f"not valid YAML: {exc}", name, line) from None
    lines: dict[tuple[str | int, ...], int] = {}
    if node is not None:
        lines[()] = node.start_mark.line + 1
        _walk(node, (), lines)
    return data, Locator(name, lines)


def _walk(
    node: yaml.Node, here: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int]
) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*here, str(key_node.value))
            lines[key] = key_node.start_mark.line + 1
            _walk(value_node, key, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            key = (*here, index)
            lines[key] = item.start_mark.line + 1
            _walk(item, key, lines)
