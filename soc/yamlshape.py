"""The shape of YAML text that people send (rule uploads, rule files): checked before loading.

PyYAML's loader and the libraries that walk what it builds (pySigma) recurse once per nesting
level, so a document nested 5,000 deep ends in a ``RecursionError``, and a file whose documents
are scalars or lists breaks code that expects mappings with an ``AttributeError``. :func:`documents`
reads the text as a stream of parser events, which needs no recursion, and reports the kind and
line of each document's top node, refusing nesting deeper than :data:`MAX_DEPTH` with the line
where it happens. This module must not know what the documents mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

#: Deeper than any real rule, routes or users file (a Sigma rule nests 4-6 levels).
MAX_DEPTH = 64


class YamlShapeError(ValueError):
    """The text nests too deep; ``line`` is 1-based."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class Document:
    """One document of a YAML stream: the kind of its top node and the line it starts on."""

    kind: str  # "mapping", "list", "scalar", "empty" or "alias"
    line: int


def documents(text: str, *, max_depth: int = MAX_DEPTH) -> list[Document]:
    """The documents of ``text``; raises ``yaml.YAMLError`` on broken YAML and
    :class:`YamlShapeError` on nesting deeper than ``max_depth``."""
    found: list[Document] = []
    depth, top_next = 0, False
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1 if event.start_mark else 1
        if isinstance(event, yaml.DocumentStartEvent):
            top_next = True
            continue
        if top_next and isinstance(event, yaml.NodeEvent):
            found.append(Document(_kind(event), line))
            top_next = False
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > max_depth:
                raise YamlShapeError(f"nested deeper than {max_depth} levels", line)
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1
    return found


def _kind(event: yaml.NodeEvent) -> str:
    if isinstance(event, yaml.MappingStartEvent):
        return "mapping"
    if isinstance(event, yaml.SequenceStartEvent):
        return "list"
    if isinstance(event, yaml.AliasEvent):
        return "alias"
    if isinstance(event, yaml.ScalarEvent) and event.value == "" and event.tag is None:
        return "empty"
    return "scalar"
