"""``soc rules import DIR``: bring a folder of community (SigmaHQ) rules in, disabled.

Every ``*.yml`` under the folder is validated together with the rules already in the rules
directory (in a scratch copy, as :mod:`detectors.sigma.uploads` does for one file), and sorted:

- *ready*: compiles and runs on soc's events; copied to ``<rules dir>/imported/`` under its own
  relative path and file name, each new rule disabled until an administrator enables it;
- *cannot run*: a valid Sigma rule that soc cannot evaluate on the events it has: a log source
  the pipeline (``rules/pipeline/soc-ecs.yaml``) does not map (it would otherwise run on every
  event), or fields the event mappings do not have (all of them are named);
- *error*: not a rule soc can load (broken YAML, invalid Sigma, a duplicate id …).

Only *ready* files are copied. This module must not print: the CLI presents the report.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import yaml
from elasticsearch import Elasticsearch
from sigma.backends.elasticsearch.elasticsearch_lucene import LuceneBackend
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError
from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule

from detectors.sigma import service as rules
from detectors.sigma.compiler import RuleSet, detection_items, load_rules
from detectors.sigma.models import Rule
from detectors.sigma.pipeline import is_known, load_pipeline, pipeline_file
from soc.config import Settings
from soc.errors import RuleError

IMPORT_DIR = "imported"


class Verdict(StrEnum):
    READY = "ready"
    CANNOT_RUN = "cannot run"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Entry:
    """One file of the imported folder and what soc makes of it."""

    file: str  # relative to the imported folder, as given
    verdict: Verdict
    reasons: tuple[RuleError, ...] = ()
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True, slots=True)
class Report:
    entries: tuple[Entry, ...]
    target: Path

    def count(self, verdict: Verdict) -> int:
        return sum(e.verdict is verdict for e in self.entries)


def examine(*, settings: Settings, source: Path, into: str = IMPORT_DIR) -> Report:
    """Sort the folder's rule files into ready / cannot run / error; changes nothing. ``into``
    is the folder of the rules directory they go to (``imported``; ``ecs`` for a rule set that
    rules/sources.yaml points at other indices)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*", into) or into == "pipeline":
        raise RuleError(f"--into {into!r}: a folder name under the rules directory")
    if not source.is_dir():
        raise RuleError(f"{source} is not a folder of Sigma rules")
    files = sorted(p.relative_to(source) for p in source.rglob("*.yml") if p.is_file())
    if not files:
        raise RuleError(f"no *.yml Sigma rule files under {source}")
    root_dir = rules.rules_dir(settings)
    pipeline = load_pipeline(pipeline_file(root_dir))
    with tempfile.TemporaryDirectory(prefix="soc-rule-import-") as scratch:
        root = Path(scratch) / "rules"
        shutil.copytree(root_dir, root)  # a re-imported file then replaces its own copy
        for relative in files:
            target = root / into / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / relative, target)
        loaded = load_rules(root, pipeline)
        scratch_paths = (f"{root.resolve()}/", f"{root}/")
        loaded = RuleSet(loaded.rules, tuple(
            RuleError(_unscratched(e.message, scratch_paths), e.path, e.line)
            for e in loaded.errors))  # fmt: skip
        entries = [_entry(p.as_posix(), into, root / into / p, loaded, pipeline) for p in files]
    return Report(tuple(entries), root_dir / into)


def _entry(name: str, into: str, path: Path, loaded: RuleSet, pipeline: ProcessingPipeline
           ) -> Entry:  # fmt: skip
    mine = f"{into}/{name}"
    errors = tuple(RuleError(e.message, name, e.line) for e in loaded.errors
                   if _is(e.path, mine))  # fmt: skip
    found = tuple(r for r in loaded.rules if _is(r.path, mine))
    unrunnable = tuple(_cannot_run(path, name, pipeline))
    if unrunnable:
        return Entry(name, Verdict.CANNOT_RUN, unrunnable)
    if errors or not found:
        return Entry(name, Verdict.ERROR, errors or (RuleError("no Sigma rule here", name, 1),))
    return Entry(name, Verdict.READY, (), found)


def _is(path: str | None, suffix: str) -> bool:
    return path is not None and path.replace("\\", "/").endswith(suffix)


def _unscratched(message: str, scratch_paths: tuple[str, ...]) -> str:
    # "duplicate rule id … (also <scratch>/web/x.yml:1)": named as in the rules directory.
    for prefix in scratch_paths:
        message = message.replace(prefix, "")
    return message


def _cannot_run(path: Path, name: str, pipeline: ProcessingPipeline) -> Iterator[RuleError]:
    """Why a valid rule cannot run on soc's events: an unmapped log source, unknown fields."""
    text = path.read_text(encoding="utf-8")
    try:
        collection = SigmaCollection.from_yaml(text, collect_errors=True)
    except (yaml.YAMLError, SigmaError):
        return  # the compiler's error says it better
    sources = _mapped_logsources(pipeline)
    for rule in collection.rules:
        if not isinstance(rule, SigmaRule) or rule.errors:
            continue
        line = _line(text, "logsource:")
        if not any(condition.match(rule) for condition in sources):
            ls = rule.logsource
            what = ", ".join(f"{k}={v}" for k, v in (("category", ls.category),
                             ("product", ls.product), ("service", ls.service)) if v)  # fmt: skip
            message = (f"log source {what or '(none)'} is not mapped by soc's pipeline "
                       "(rules/pipeline/soc-ecs.yaml): soc has no such events")  # fmt: skip
            yield RuleError(message, name, line)
            continue
        try:
            LuceneBackend(processing_pipeline=pipeline).convert_rule(rule)
        except SigmaError:
            continue
        fields = {item.field for item in detection_items(rule) if item.field}
        unknown = sorted(field for field in fields if not is_known(field))
        if unknown:
            yield RuleError(f"fields not in soc's events: {', '.join(unknown)}", name,
                            _line(text, unknown[0]))  # fmt: skip


def _mapped_logsources(pipeline: ProcessingPipeline) -> list[LogsourceCondition]:
    """The log sources some transformation of the pipeline selects events for."""
    found: list[LogsourceCondition] = []
    for item in pipeline.items:
        conditions = getattr(item, "rule_conditions", None) or []
        found.extend(c for c in conditions if isinstance(c, LogsourceCondition))
    return found


def _line(text: str, needle: str) -> int:
    for number, content in enumerate(text.splitlines(), start=1):
        if needle in content:
            return number
    return 1


def apply(*, es: Elasticsearch, settings: Settings, source: Path, report: Report, by: str
          ) -> list[Rule]:  # fmt: skip
    """Copy the ready files into ``<rules dir>/imported/``; rules new to soc start disabled
    (disabled before the file appears, so a detector reloading in between never runs one).
    A rule already known keeps its state: re-importing an updated folder enables nothing."""
    known = {r.id for r in rules.load(settings=settings).rules}
    imported: list[Rule] = []
    for entry in report.entries:
        if entry.verdict is not Verdict.READY:
            continue
        for rule in entry.rules:
            if rule.id not in known:
                rules.set_enabled(es=es, settings=settings, rule=rule, on=False, by=by)
        target = report.target / entry.file
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        shutil.copyfile(source / entry.file, partial)
        partial.replace(target)
        imported.extend(entry.rules)
    return imported
