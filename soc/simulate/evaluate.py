"""Detection quality of a run: alerts in ``<prefix>-alerts`` against the run's ground truth.

For each scenario: detected or missed, and the time to detect (the end of the first matching
alert's window minus the scenario's start: data time, so a backfill evaluated later scores the
same as a live run). Alerts that match no scenario are false alerts. Precision is matched alerts
over all alerts; recall is detected scenarios over scenarios. Reading alerts is the only I/O here;
the matching is a pure function so it can be tested on its own.

An alert matches a label when its province is the label's (and its ward too, when both name one),
its service is the label's (an alert or a label without a service matches any), and its window
overlaps the scenario's time plus a grace period for late detectors.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from elasticsearch import Elasticsearch

from soc import timeutil
from soc.es.indices import Indices
from soc.simulate.models import Label


@dataclass(frozen=True)
class SeenAlert:
    """The parts of a stored alert (soc/alerts/models.py) that evaluation needs."""

    id: str
    rule: str
    detector: str
    start: datetime
    end: datetime
    province: str | None
    ward: str | None
    service: str | None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> SeenAlert:
        locality = doc.get("locality") or {}
        return cls(
            id=str(doc["alert"]["id"]),
            rule=str((doc.get("rule") or {}).get("name") or (doc.get("rule") or {}).get("id")),
            detector=str(doc.get("detector")),
            start=_parse(doc["window"]["start"]),
            end=_parse(doc["window"]["end"]),
            province=(locality.get("province") or {}).get("code"),
            ward=(locality.get("ward") or {}).get("code"),
            service=(doc.get("service") or {}).get("name"),
        )


@dataclass(frozen=True)
class Outcome:
    scenario_id: str
    kind: str
    detected: bool
    time_to_detect: timedelta | None
    alerts: tuple[str, ...]


@dataclass(frozen=True)
class Evaluation:
    outcomes: tuple[Outcome, ...]
    alerts_total: int
    false_alerts: tuple[SeenAlert, ...]

    @property
    def precision(self) -> float | None:
        if not self.alerts_total:
            return None
        return (self.alerts_total - len(self.false_alerts)) / self.alerts_total

    @property
    def recall(self) -> float | None:
        if not self.outcomes:
            return None
        return sum(o.detected for o in self.outcomes) / len(self.outcomes)

    def false_by_rule(self) -> dict[str, int]:
        """False alerts per rule, noisiest first: where tuning pays off."""
        counts = Counter(a.rule for a in self.false_alerts)
        return dict(counts.most_common())

    def by_kind(self) -> list[dict[str, Any]]:
        """One row per scenario kind: scenarios, detected, recall, median time to detect."""
        groups: dict[str, list[Outcome]] = defaultdict(list)
        for outcome in self.outcomes:
            groups[outcome.kind].append(outcome)
        rows = []
        for kind, items in sorted(groups.items()):
            times = [o.time_to_detect for o in items if o.time_to_detect is not None]
            rows.append({
                "kind": kind, "scenarios": len(items),
                "detected": sum(o.detected for o in items),
                "recall": sum(o.detected for o in items) / len(items),
                "median_ttd_s": median(t.total_seconds() for t in times) if times else None,
            })  # fmt: skip
        return rows


def matches(alert: SeenAlert, label: Label, grace: timedelta) -> bool:
    if alert.province != label.province_code:
        return False
    if alert.ward and label.ward_code and alert.ward != label.ward_code:
        return False
    if alert.service and label.service != "*" and alert.service != label.service:
        return False
    return alert.start < label.end + grace and label.start < alert.end


def evaluate(labels: list[Label], alerts: list[SeenAlert], *, grace: timedelta) -> Evaluation:
    by_scenario: dict[str, list[Label]] = defaultdict(list)
    for label in labels:
        by_scenario[label.scenario_id].append(label)
    matched: set[str] = set()
    outcomes = []
    for scenario_id, group in by_scenario.items():
        hits = [a for a in alerts if any(matches(a, label, grace) for label in group)]
        matched.update(a.id for a in hits)
        start = min(label.start for label in group)
        first = min((a.end for a in hits), default=None)
        outcomes.append(Outcome(
            scenario_id=scenario_id, kind=group[0].kind, detected=bool(hits),
            time_to_detect=max(first - start, timedelta(0)) if first else None,
            alerts=tuple(sorted(a.id for a in hits)),
        ))  # fmt: skip
    false = tuple(a for a in alerts if a.id not in matched)
    return Evaluation(outcomes=tuple(outcomes), alerts_total=len(alerts), false_alerts=false)


def fetch_alerts(
    es: Elasticsearch, indices: Indices, start: datetime | None, end: datetime | None
) -> list[SeenAlert]:
    """Every alert whose window overlaps ``[start, end)`` (all alerts when both are None)."""
    filters: list[dict[str, Any]] = []
    if end is not None:
        filters.append({"range": {"window.start": {"lt": end.isoformat()}}})
    if start is not None:
        filters.append({"range": {"window.end": {"gt": start.isoformat()}}})
    query = {"bool": {"filter": filters}} if filters else {"match_all": {}}
    found: list[SeenAlert] = []
    after: list[Any] | None = None
    quiet = es.options(ignore_status=404)
    while True:
        body: dict[str, Any] = {"size": 1000, "query": query,
                                "sort": [{"window.start": "asc"}, {"alert.id": "asc"}]}  # fmt: skip
        if after is not None:
            body["search_after"] = after
        page = quiet.search(index=indices.alerts, **body)
        hits = page.get("hits", {}).get("hits", [])
        found.extend(SeenAlert.from_doc(hit["_source"]) for hit in hits)
        if len(hits) < 1000:
            return found
        after = hits[-1]["sort"]


def _parse(text: str) -> datetime:
    return timeutil.parse(str(text))
