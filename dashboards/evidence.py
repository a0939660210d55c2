"""An incident's evidence by its kind: what a probe answered, what a rule matched, the summary now.

* **probe** (the probe rule, or probe results among the samples): the endpoint, the check, its
  latest answers (HTTP status, error, latency) and since when it has been failing, from
  ``soc.events.service.probe_checks``;
* **rule** (Sigma): the matched events with, for each, the fields the rule's detection names and
  the values they had (read from the rule's own YAML file, found through the alert's
  ``explanation.rule_file``, only inside the rules directory);
* **anomaly**: the chart of :mod:`dashboards.charts`.

The summary follows the incident: the latest alert's, with how many alerts joined and when the
last one came. This module builds plain values for the template; it writes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from soc import timezones
from soc.alerts.models import Detector
from soc.alerts.service import StoredAlert
from soc.incidents.models import Incident

PROBE_DATASET = "probe.http"
_NOT_FIELDS = {"condition", "timeframe"}


@dataclass(frozen=True)
class ProbeCheck:
    at: datetime | None
    up: bool
    answer: str
    latency_ms: float | None


@dataclass(frozen=True)
class ProbeEvidence:
    endpoints: tuple[str, ...]
    targets: tuple[str, ...]
    checks: tuple[ProbeCheck, ...]
    down_since: datetime | None
    last_ok: datetime | None


def kind_of(found: list[StoredAlert], events: list[dict[str, Any]]) -> str:
    """``probe``, ``anomaly`` or ``rule``: which evidence explains this incident best."""
    if any(_get(e, "event.dataset") == PROBE_DATASET for e in events) or any(
        "probe" in s.alert.rule.id or "probe" in (s.alert.rule.name or "").lower() for s in found
    ):
        return "probe"
    if found and all(s.alert.detector is Detector.ANOMALY for s in found):
        return "anomaly"
    return "rule"


def probe(checks: list[dict[str, Any]]) -> ProbeEvidence:
    """The probe's story from its results, newest first: answers, and the current failing run."""
    rows = tuple(_check(c) for c in checks)
    down_since = None
    for row in rows:  # newest first: the run of failures up to the latest result
        if row.up:
            break
        down_since = row.at
    last_ok = next((r.at for r in rows if r.up), None)
    endpoints = _distinct(_get(c, "url.full") for c in checks)
    targets = _distinct(_get(c, "soc.probe.target") for c in checks)
    return ProbeEvidence(endpoints, targets, rows, down_since, last_ok)


def _check(doc: dict[str, Any]) -> ProbeCheck:
    up = bool(_get(doc, "soc.probe.up"))
    status = _get(doc, "http.response.status_code")
    error = _get(doc, "error.message")
    parts = [f"HTTP {status}" if status is not None else "", str(error) if error else ""]
    if _get(doc, "soc.probe.keyword_found") is False:
        parts.append("keyword missing")
    answer = " · ".join(p for p in parts if p) or ("OK" if up else "no answer")
    latency = _get(doc, "soc.probe.latency_ms")
    return ProbeCheck(timezones.parse(doc.get("@timestamp")), up, answer,
                      float(latency) if isinstance(latency, int | float) else None)  # fmt: skip


def rule_fields(found: list[StoredAlert], rules_root: Path) -> tuple[str, ...]:
    """The field names the rules behind ``found`` test, from their YAML ``detection`` blocks."""
    names: dict[str, None] = {}
    for stored in found:
        where = str(stored.alert.explanation.get("rule_file") or "")
        path = Path(re.sub(r":\d+$", "", where))
        for name in _fields_of(path.resolve(), rules_root.resolve()):
            names[name] = None
        for name in stored.alert.group:
            names.setdefault(name, None)
    return tuple(names)


@lru_cache(maxsize=256)
def _fields_of(path: Path, root: Path) -> tuple[str, ...]:
    if not path.is_relative_to(root) or not path.is_file():
        return ()  # only rules of the rules directory are read
    try:
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError):
        return ()
    names: dict[str, None] = {}
    for doc in docs:
        detection = doc.get("detection") if isinstance(doc, dict) else None
        if not isinstance(detection, dict):
            continue
        for key, block in detection.items():
            if key in _NOT_FIELDS:
                continue
            for item in block if isinstance(block, list) else [block]:
                if isinstance(item, dict):
                    names.update((str(k).split("|")[0], None) for k in item)
    return tuple(names)


def matched(event: dict[str, Any], fields: tuple[str, ...]) -> list[tuple[str, str]]:
    """The (field, value) pairs of ``event`` among the rule's fields, as text."""
    pairs = []
    for name in fields:
        value = _get(event, name)
        if value is not None and value != "":
            pairs.append((name, str(value)[:300]))
    return pairs


@dataclass(frozen=True)
class Summary:
    text: str
    alerts: int
    last: datetime | None


def summary(incident: Incident, found: list[StoredAlert], total: int) -> Summary:
    """What the incident says now: its latest alert's summary (alerts come newest first)."""
    latest = max(found, key=lambda s: s.alert.created, default=None)
    text = latest.alert.summary if latest else incident.summary
    return Summary(text or incident.summary, total, latest.alert.created if latest else None)


def _distinct(values: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str(v) for v in values if v))


def _get(doc: Any, dotted: str) -> Any:
    node = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
