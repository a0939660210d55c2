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

    def line(self, loc: Sequence[str | int]) -> int | None:
        """The line of ``loc`` or of its nearest known parent."""
        key = tuple(loc)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), None)

    def error(self, exc: ValidationError) -> CollectorConfigError:
        """One :class:`CollectorConfigError` naming the first problem's key and line."""
        problems = exc.errors()
        first = problems[0]
        loc = [p for p in first["loc"] if isinstance(p, str | int)]
        key = ".".join(str(p) for p in loc) or "(top level)"
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        return CollectorConfigError(f"{key}: {first['msg']}{more}", self.path, self.line(loc))


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
