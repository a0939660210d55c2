"""Test events that ship with every rule (``rules/**/<rule>.tests.yaml``), and how they become
ECS events.

A tests file names its rule and lists ``fire`` cases (each must raise at least one alert) and
``quiet`` cases (none may). An event is written with dotted ECS keys plus a few controls:
``_at`` (seconds after the case's start), ``_repeat`` (copies), ``_every`` (seconds between copies),
``_cycle`` (a field and values taken in turn by the copies: a list, or ``{format: "hn{:03d}",
count: 400}`` for 400 numbered values) and ``_late`` (seconds between ``@timestamp`` and
``event.ingested``). This module builds events; it must not index them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from detectors.base import iso
from detectors.sigma.models import Case, RuleTests
from soc.errors import RuleError
from soc.localities import catalogue
from soc.yamlshape import YamlShapeError, documents

_CONTROLS = {"_at", "_repeat", "_every", "_cycle", "_late"}
DEFAULT_PROVINCE = "01"


def load_tests(path: Path, shown: str) -> tuple[str, RuleTests]:
    """The rule key (id or name) and the cases of one tests file."""
    text = path.read_text(encoding="utf-8")
    try:
        documents(text)  # nesting bounded before the recursive loader sees it
        body = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise RuleError(f"broken YAML: {exc}", shown, mark.line + 1 if mark else None) from None
    except YamlShapeError as exc:
        raise RuleError(f"YAML {exc.message}", shown, exc.line) from None
    if not isinstance(body, dict) or not isinstance(body.get("rule"), str):
        raise RuleError("a tests file needs `rule: <rule id or name>`", shown, 1)
    cases = {kind: _cases(body.get(kind) or [], kind, shown) for kind in ("fire", "quiet")}
    if not cases["fire"] or not cases["quiet"]:
        raise RuleError("a tests file needs at least one `fire` and one `quiet` case", shown, 1)
    return body["rule"], RuleTests(path=shown, fire=cases["fire"], quiet=cases["quiet"])


def _cases(raw: Any, kind: str, shown: str) -> tuple[Case, ...]:
    if not isinstance(raw, list):
        raise RuleError(f"`{kind}` must be a list of cases", shown, 1)
    cases = []
    for number, item in enumerate(raw, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("events"), list):
            raise RuleError(f"{kind} case {number} needs `name` and a list of `events`", shown, 1)
        name = str(item.get("name", f"{kind} {number}"))
        for spec in item["events"]:
            cycle = spec.get("_cycle") if isinstance(spec, dict) else None
            for field, values in (cycle or {}).items():
                if _values(values) is None:
                    wanted = "a list or {format: '<text with {}>', count: <n>}"
                    raise RuleError(
                        f"{kind} case {name!r}: `_cycle` of {field!r}: {wanted}", shown, 1
                    )
        cases.append(Case(name, tuple(item["events"])))
    return tuple(cases)


def _values(raw: Any) -> list[Any] | None:
    """The values a ``_cycle`` entry stands for: a non-empty list as written, or ``count``
    numbered values from ``format`` (``{format: "hn{:03d}", count: 3}``: hn000, hn001, hn002);
    None when it is neither."""
    if isinstance(raw, list):
        return raw or None
    if not isinstance(raw, Mapping) or set(raw) != {"format", "count"}:
        return None
    count, text = raw["count"], raw["format"]
    if not isinstance(count, int) or not 0 < count <= 100_000 or not isinstance(text, str):
        return None
    try:
        return [text.format(k) for k in range(count)]
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return None


def materialise(case: Case, start: datetime) -> list[dict[str, Any]]:
    """The ECS events of a case, timed from ``start``."""
    events: list[dict[str, Any]] = []
    for spec in case.events:
        events.extend(_expand(spec, start))
    return events


def _expand(spec: Mapping[str, Any], start: datetime) -> Iterator[dict[str, Any]]:
    fields = {k: v for k, v in spec.items() if k not in _CONTROLS}
    cycle = {name: _values(raw) or [None] for name, raw in (spec.get("_cycle") or {}).items()}
    at = float(spec.get("_at", 0))
    every = float(spec.get("_every", 1))
    late = float(spec.get("_late", 1))
    for index in range(int(spec.get("_repeat", 1))):
        flat = dict(fields)
        for name, values in cycle.items():
            flat[name] = values[index % len(values)]
        stamp = start + timedelta(seconds=at + index * every)
        flat["@timestamp"] = iso(stamp)
        flat["event.ingested"] = iso(stamp + timedelta(seconds=late))
        flat.setdefault("event.kind", "event")
        flat.setdefault("locality.province.code", DEFAULT_PROVINCE)
        yield _nest(_with_locality(flat))


def _with_locality(flat: dict[str, Any]) -> dict[str, Any]:
    cat = catalogue()
    province = cat.province(str(flat["locality.province.code"]))
    flat["locality.province.name"] = province.name
    ward_code = flat.get("locality.ward.code")
    if ward_code is not None:
        flat["locality.ward.name"] = cat.ward(str(ward_code), province).name
    return flat


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for dotted, value in flat.items():
        if dotted == "@timestamp":
            doc[dotted] = value
            continue
        node = doc
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return doc
