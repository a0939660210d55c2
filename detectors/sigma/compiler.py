"""Load Sigma rules from ``rules/`` and compile them into runnable :class:`Rule` objects.

Plain rules live in ``*.yml`` files (one rule each, exactly what ``sigma convert`` reads);
correlation rules in ``*.correlation.yaml`` (the Lucene backend cannot convert them, so sigma-cli's
default ``*.yml`` pattern skips them); test events in ``*.tests.yaml``. Conversion uses pySigma's
Lucene backend with soc's pipeline, so the query soc runs is byte for byte the one ``sigma convert
-t lucene -p rules/pipeline/soc-ecs.yaml`` prints.

A broken file yields a :class:`RuleError` naming file and line and is left out; every other rule
still loads. This module must not query Elasticsearch.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from sigma.backends.elasticsearch.elasticsearch_lucene import LuceneBackend
from sigma.collection import SigmaCollection
from sigma.correlations import (
    SigmaCorrelationCondition,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)
from sigma.exceptions import SigmaError
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import SigmaRegularExpression

from detectors.base import parse_duration
from detectors.sigma.condition import Node, condition_tree
from detectors.sigma.models import Condition, Kind, Rule, RuleTests
from detectors.sigma.pipeline import RULES_DIR, is_known, load_pipeline, pipeline_file
from detectors.sigma.ratio import load_ratio
from detectors.sigma.testcases import load_tests
from soc.alerts.models import Severity
from soc.errors import RuleError, UnknownRuleError
from soc.yamlshape import YamlShapeError, documents

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = timedelta(minutes=1)
_MAX_REGEX = 256
# A quantified group that itself contains a quantifier ("(a+)+", "(.*x)*"): the classic
# catastrophic-backtracking shape, and a Lucene automaton that may blow up on determinisation.
_NESTED_QUANTIFIER = re.compile(r"\([^()]*[+*}][^()]*\)\s*[+*{]")


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The rules that loaded, and an error for each that did not."""

    rules: tuple[Rule, ...]
    errors: tuple[RuleError, ...]

    def get(self, key: str) -> Rule:
        for rule in self.rules:
            if key in (rule.id, rule.name):
                return rule
        raise UnknownRuleError(f"no rule with id or name {key!r} (see `soc rules list`)")

    @property
    def runnable(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.alerts)


def load_rules(root: Path = RULES_DIR, pipeline: ProcessingPipeline | None = None) -> RuleSet:
    """Compile every rule under ``root`` (with ``root``'s pipeline unless given); collect errors
    instead of stopping at the first."""
    pipeline = pipeline if pipeline is not None else load_pipeline(pipeline_file(root))
    errors: list[RuleError] = []
    plain: list[Rule] = []
    for path in _rule_files(root, "*.yml"):
        for rule, error in _load_file(path, pipeline):
            if error is not None:
                errors.append(error)
            elif rule is not None:
                plain.append(rule)
    correlations: list[Rule] = []
    for path in _rule_files(root, "*.correlation.yaml"):
        for rule, error in _load_file(path, pipeline, plain):
            if error is not None:
                errors.append(error)
            elif rule is not None:
                correlations.append(rule)
    feeding = {ref for c in correlations for ref, _ in c.base}
    feeding |= {c.ratio.of for c in correlations if c.ratio is not None}
    plain = [r if r.id not in feeding else _replace(r, alerts=False) for r in plain]
    rules = _attach_tests(root, [*plain, *correlations], errors)
    _check_unique(rules, errors)
    for error in errors:
        log.warning("rule not loaded: %s", error)
    return RuleSet(tuple(rules), tuple(errors))


def convert(rule_text: str, pipeline: ProcessingPipeline | None = None) -> list[str]:
    """The Lucene queries of the plain rules in a YAML text (what ``soc rules convert`` shows)."""
    backend = LuceneBackend(processing_pipeline=pipeline or load_pipeline())
    collection = SigmaCollection.from_yaml(rule_text)
    return [str(q) for q in backend.convert(collection)]


# ----------------------------------------------------------------------------- files
def _rule_files(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in root.rglob(pattern) if "pipeline" not in p.relative_to(root).parts)


def _load_file(
    path: Path, pipeline: ProcessingPipeline, plain: Iterable[Rule] = ()
) -> Iterator[tuple[Rule | None, RuleError | None]]:
    shown = _shown(path)
    text = path.read_text(encoding="utf-8")
    try:
        check_shape(text, shown)
        collection = SigmaCollection.from_yaml(text, collect_errors=True, resolve_references=False)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        yield None, RuleError(f"broken YAML: {getattr(exc, 'problem', exc)}", shown, line)
        return
    except RuleError as exc:
        yield None, exc
        return
    except SigmaError as exc:
        yield None, RuleError(f"not a Sigma rule: {exc}", shown, 1)
        return
    title_lines = [i + 1 for i, ln in enumerate(text.splitlines()) if ln.startswith("title:")]
    for index, item in enumerate(collection.rules):
        line = title_lines[index] if index < len(title_lines) else 1
        if item.errors:
            yield None, RuleError(f"invalid rule: {item.errors[0]}", shown, _line_of(item, text))
            continue
        try:
            if isinstance(item, SigmaCorrelationRule):
                yield _correlation(item, shown, line, list(plain), text), None
            elif isinstance(item, SigmaRule):
                yield _plain(item, shown, line, text, pipeline), None
        except RuleError as exc:
            yield None, exc
        except (SigmaError, ValueError) as exc:
            yield None, RuleError(f"cannot compile rule {item.title!r}: {exc}", shown, line)


def check_shape(text: str, shown: str) -> None:
    """Refuse what pySigma cannot walk: nesting too deep, documents that are not mappings."""
    try:
        docs = documents(text)
    except YamlShapeError as exc:
        raise RuleError(f"not a Sigma rule: YAML {exc.message}", shown, exc.line) from None
    for number, doc in enumerate(docs, start=1):
        if doc.kind != "mapping":
            raise RuleError(
                f"not a Sigma rule: YAML document {number} is {_A[doc.kind]}, not a mapping of "
                "rule fields (title, id, logsource, detection ...)",
                shown,
                doc.line,
            )


_A = {"list": "a list", "scalar": "a single value", "empty": "empty", "alias": "an alias"}


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _line_of(item: SigmaRule | SigmaCorrelationRule, text: str) -> int:
    """The line of a pySigma error: its own location when it has one, else the first line
    naming what it quotes (``Unknown modifier 'explode'`` -> the line with ``explode``)."""
    error = item.errors[0]
    line = getattr(getattr(error, "source", None), "line", None)
    if isinstance(line, int):
        return line
    for quoted in re.findall(r"'([^']+)'", str(error)):
        found = _find_line(text, quoted, 0)
        if found:
            return found
    return 1


# ----------------------------------------------------------------------------- plain rules
def _plain(rule: SigmaRule, path: str, line: int, text: str, pipeline: ProcessingPipeline) -> Rule:
    backend = LuceneBackend(processing_pipeline=pipeline)
    queries = backend.convert_rule(rule)
    if len(queries) != 1:
        raise RuleError(
            f"rule {rule.title!r} converted to {len(queries)} queries, not 1", path, line
        )
    for item in detection_items(rule):
        _check_item(item, path, text, line)
    return Rule(
        id=str(rule.id) if rule.id else _missing_id(path, line),
        name=rule.name,
        title=rule.title,
        description=rule.description or "",
        level=_level(rule.level, path, line),
        tags=tuple(str(t) for t in rule.tags),
        falsepositives=tuple(rule.falsepositives),
        kind=Kind.QUERY,
        path=path,
        line=line,
        interval=_interval(rule.custom_attributes, path, line),
        query=str(queries[0]),
        tree=condition_tree(backend, rule),
    )


def detection_items(rule: SigmaRule) -> Iterator[SigmaDetectionItem]:
    """Every field/value item of a rule's detection, however deeply its lists nest."""

    def walk(node: SigmaDetection | SigmaDetectionItem) -> Iterator[SigmaDetectionItem]:
        if isinstance(node, SigmaDetectionItem):
            yield node
        else:
            for child in node.detection_items:
                yield from walk(child)

    for detection in rule.detection.detections.values():
        yield from walk(detection)


def _check_item(item: SigmaDetectionItem, path: str, text: str, line: int) -> None:
    if item.field is not None and not is_known(item.field):
        raise RuleError(
            f"unknown field {item.field!r}: soc's events have no such field "
            "(see docs/schema.md and rules/pipeline/soc-ecs.yaml)",
            path,
            _find_line(text, item.field, line),
        )
    for value in item.value:
        if isinstance(value, SigmaRegularExpression):
            pattern = str(value.regexp)
            if len(pattern) > _MAX_REGEX or _NESTED_QUANTIFIER.search(pattern):
                raise RuleError(
                    f"regular expression {pattern[:80]!r} on {item.field!r} could explode "
                    f"(nested quantifiers or longer than {_MAX_REGEX} characters): "
                    "rewrite it with contains/startswith/endswith",
                    path,
                    _find_line(text, pattern[:20], line),
                )


def _find_line(text: str, needle: str, default: int) -> int:
    for number, content in enumerate(text.splitlines(), start=1):
        if needle in content:
            return number
    return default


def _missing_id(path: str, line: int) -> str:
    raise RuleError("rule has no id: every soc rule needs a UUID `id`", path, line)


def _level(level: Any, path: str, line: int) -> Severity:
    if level is None:
        raise RuleError(
            "rule has no level (informational, low, medium, high, critical)", path, line
        )
    return Severity(str(level.name).lower())


def _interval(custom: dict[str, Any], path: str, line: int) -> timedelta:
    raw = custom.get("interval")
    if raw is None:
        return DEFAULT_INTERVAL
    try:
        return parse_duration(str(raw))
    except ValueError as exc:
        raise RuleError(f"interval: {exc}", path, line) from None


# ----------------------------------------------------------------------------- correlations
def _correlation(
    rule: SigmaCorrelationRule, path: str, line: int, plain: list[Rule], text: str = ""
) -> Rule:
    by_key = {k: r for r in plain for k in (r.id, r.name) if k}
    base: list[tuple[str, str]] = []
    trees: list[Node | None] = []
    for ref in rule.rules or []:
        target = by_key.get(str(ref.reference))
        if target is None:
            raise RuleError(f"correlation refers to unknown rule {ref.reference!r}", path, line)
        base.append((target.id, target.query))
        trees.append(target.tree)
    kind = Kind(rule.type.name.lower())
    condition = rule.condition
    if not isinstance(condition, SigmaCorrelationCondition):
        raise RuleError("extended correlation conditions are not supported by soc", path, line)
    value_field = condition.fieldref if rule.type is SigmaCorrelationType.VALUE_COUNT else None
    if isinstance(value_field, list):
        value_field = value_field[0] if value_field else None
    group_by = list(rule.group_by or [])
    for name in [*group_by, *([value_field] if value_field else [])]:
        if not is_known(name):
            raise RuleError(f"unknown group-by/field {name!r} in correlation", path, line)
    cond_op = condition.op.name.lower()
    custom = {k: v for k, v in rule.custom_attributes.items() if k != "correlation"}
    extension = custom.pop("soc", None)
    ratio = None
    if extension is not None:
        where = _find_line(text, "soc:", line)
        ratio = load_ratio(extension, kind, tuple(group_by), by_key, path, where)
    return Rule(
        id=str(rule.id) if rule.id else _missing_id(path, line),
        name=rule.name,
        title=rule.title,
        description=rule.description or "",
        level=_level(rule.level, path, line),
        tags=tuple(str(t) for t in rule.tags),
        falsepositives=tuple(rule.falsepositives),
        kind=kind,
        path=path,
        line=line,
        interval=_interval(custom, path, line),
        base=tuple(base),
        base_trees=tuple(trees),
        group_by=tuple(group_by),
        timespan=timedelta(seconds=rule.timespan.seconds),
        condition=Condition(cond_op, int(condition.count)) if condition.count is not None else None,
        value_field=value_field,
        ratio=ratio,
    )


# ----------------------------------------------------------------------------- tests, checks
def _attach_tests(root: Path, rules: list[Rule], errors: list[RuleError]) -> list[Rule]:
    found: dict[str, RuleTests] = {}
    for path in sorted(root.rglob("*.tests.yaml")):
        try:
            rule_id, tests = load_tests(path, _shown(path))
        except RuleError as exc:
            errors.append(exc)
            continue
        found[rule_id] = tests
    keys = {k: r.id for r in rules for k in (r.id, r.name) if k}
    attached = {keys[k]: t for k, t in found.items() if k in keys}
    for key, tests in found.items():
        if key not in keys:
            errors.append(RuleError(f"tests name unknown rule {key!r}", tests.path, 1))
    return [_replace(r, tests=attached.get(r.id)) for r in rules]


def _check_unique(rules: list[Rule], errors: list[RuleError]) -> None:
    seen: dict[str, Rule] = {}
    for rule in rules:
        if rule.id in seen:
            errors.append(RuleError(f"duplicate rule id {rule.id} (also {seen[rule.id].where})",
                                    rule.path, rule.line))  # fmt: skip
        seen[rule.id] = rule


def _replace(rule: Rule, **changes: Any) -> Rule:
    from dataclasses import replace

    return replace(rule, **changes)
