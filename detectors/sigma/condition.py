"""A plain rule's condition as a typed tree of Lucene parts, built from pySigma's own parse tree.

The shared searches (``detectors.sigma.search``) name each part of a rule's query once, so a part
used by many rules (``event.category:web``, ``*sqlmap*``) is matched once per window. The parts
come from the condition tree pySigma parsed and the processing pipeline transformed
(``SigmaRule.detection.parsed_condition``): ``ConditionAND``/``OR``/``NOT`` become :class:`And`,
:class:`Or`, :class:`Not`, and every other node a :class:`Leaf` whose Lucene text the same
``LuceneBackend`` renders, so no query string is ever parsed again. A leaf may also carry its
:class:`Local` patterns: Sigma's ``contains``/``endswith`` values on lowercase keywords, decided
from pySigma's typed values (``SigmaString`` with its ``SpecialChars``), which the scan matches in
Python against doc values instead of asking Lucene for a leading wildcard.
This module must not build searches (see ``detectors.sigma.search``) nor read rule files.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sigma.backends.elasticsearch.elasticsearch_lucene import LuceneBackend
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.conversion.state import ConversionState
from sigma.rule import SigmaRule
from sigma.types import SigmaString, SpecialChars

from soc.es.indices import Kind as IndexKind
from soc.es.templates import lowercase_keywords


@dataclass(frozen=True, slots=True)
class Local:
    """A leading-wildcard value matched in Python. Lucene runs such a pattern against a field's
    whole terms dictionary (per daily index: a million distinct URL queries a day), which made
    rules that share nothing cost milliseconds each; the scope's few events are cheaper to
    test. Only ASCII text on a lowercase keyword with doc values: the doc values hold the
    normalised value, so ``text in value`` means what the wildcard means."""

    field: str
    text: str
    #: ``*text*`` (True) or ``*text`` (False).
    contains: bool


@dataclass(frozen=True, slots=True)
class Leaf:
    """A part searched as one Lucene ``query_string``; ``local``: the same part as patterns
    matched in Python (any of them matches), when every value allows it."""

    query: str
    local: tuple[Local, ...] = ()


@dataclass(frozen=True, slots=True)
class And:
    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    part: Node


Node = Leaf | And | Or | Not


def condition_tree(backend: LuceneBackend, rule: SigmaRule) -> Node:
    """The tree of a rule ``backend`` has just converted (its pipeline applied to ``rule``)."""
    (condition,) = rule.detection.parsed_condition
    state = ConversionState(processing_state=dict(backend.last_processing_pipeline.state))
    return _walk(backend, condition.parsed, state)


def _walk(backend: LuceneBackend, node: ConditionItem | object, state: ConversionState) -> Node:
    if isinstance(node, ConditionOR | ConditionAND):
        if backend.decide_convert_condition_as_in_expression(node, state):
            # ``field:(a OR b)``: one part, as the backend writes it; local if all values are
            values = [_local(arg) for arg in node.args]
            found = tuple(one for one in values if one is not None)
            whole = isinstance(node, ConditionOR) and len(found) == len(values)
            return Leaf(_render(backend, node, state), found if whole else ())
        parts = tuple(_walk(backend, arg, state) for arg in node.args)
        if len(parts) == 1:
            return parts[0]
        return And(parts) if isinstance(node, ConditionAND) else Or(parts)
    if isinstance(node, ConditionNOT):
        return Not(_walk(backend, node.args[0], state))
    local = _local(node) if isinstance(node, ConditionFieldEqualsValueExpression) else None
    return Leaf(_render(backend, node, state), (local,) if local else ())


def _render(backend: LuceneBackend, node: object, state: ConversionState) -> str:
    assert isinstance(
        node, ConditionItem | ConditionFieldEqualsValueExpression | ConditionValueExpression
    )
    return str(backend.convert_condition(node, state))


def _local(node: object) -> Local | None:
    """``*text*`` or ``*text`` of plain ASCII on a lowercase keyword, or None."""
    if not isinstance(node, ConditionFieldEqualsValueExpression):
        return None
    value = node.value
    if type(value) is not SigmaString or node.field not in _lowercase():
        return None  # a cased string, a regular expression, a number, another field ...
    parts = value.s
    if len(parts) not in (2, 3) or parts[0] is not SpecialChars.WILDCARD_MULTI:
        return None
    text, tail = parts[1], parts[2:]
    if not isinstance(text, str) or not text.isascii() or "\0" in text:
        return None
    if tail and tail[0] is not SpecialChars.WILDCARD_MULTI:
        return None
    return Local(node.field, text.lower(), contains=bool(tail))


@functools.cache
def _lowercase() -> frozenset[str]:
    return lowercase_keywords(IndexKind.EVENTS)


def leaves(node: Node) -> list[Leaf]:
    """Every leaf of ``node``, left to right."""
    if isinstance(node, Leaf):
        return [node]
    if isinstance(node, Not):
        return leaves(node.part)
    return [leaf for part in node.parts for leaf in leaves(part)]
