"""Read-only observation of a running demo: for each injected scenario (the simulator's ground
truth labels), when did its alert, its incident and its email appear?

Used by the demo's end-to-end test and by ``bench/e2e_latency.py``. It only reads (searches on the
alerts, incidents and outbox indices, through :class:`~soc.es.indices.Indices`), never writes, and
judges nothing beyond timestamps: a scenario's time zero is its start in the labels, which is when
the simulator writes its first event (live mode writes every tick, 1 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from soc import timeutil
from soc.es.indices import Indices
from soc.simulate.models import Label

#: An alert belongs to a scenario when its window overlaps the scenario, with this much slack
#: after its end (correlation windows close later than the events that fill them).
SLACK = timedelta(minutes=2)


@dataclass(frozen=True)
class Timing:
    scenario_id: str
    kind: str
    start: datetime
    alert: datetime | None = None
    incident: datetime | None = None
    email: datetime | None = None
    rule: str | None = None

    def seconds(self, stage: str) -> float | None:
        at: datetime | None = getattr(self, stage)
        return None if at is None else (at - self.start).total_seconds()

    @property
    def complete(self) -> bool:
        return None not in (self.alert, self.incident, self.email)


def _when(text: str | None) -> datetime | None:
    return None if text is None else timeutil.parse(text)


def _search(es: Elasticsearch, index: str, query: dict[str, Any], size: int = 50,
            sort: list[Any] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    es.indices.refresh(index=index, ignore_unavailable=True)
    found = es.search(index=index, query=query, size=size, sort=sort or [],
                      ignore_unavailable=True)  # fmt: skip
    return [dict(hit["_source"]) for hit in found["hits"]["hits"]]


def _scenario_alerts(label: Label) -> list[dict[str, Any]]:
    """Filters for the alerts of the scenario's place whose window overlaps it, written after
    its first event. Probe and province-wide rules carry no ward: those count too."""
    place: list[dict[str, Any]] = [{"term": {"locality.province.code": label.province_code}}]
    if label.ward_code:
        place.append({"bool": {"should": [
            {"term": {"locality.ward.code": label.ward_code}},
            {"bool": {"must_not": {"exists": {"field": "locality.ward.code"}}}},
        ]}})  # fmt: skip
    return [
        *place,
        {"range": {"window.end": {"gte": label.start.isoformat()}}},
        {"range": {"window.start": {"lte": (label.end + SLACK).isoformat()}}},
        {"range": {"@timestamp": {"gte": label.start.isoformat()}}},
    ]


def first_alert(es: Elasticsearch, indices: Indices, label: Label) -> dict[str, Any] | None:
    """The earliest Sigma alert of the scenario's place whose window overlaps the scenario and
    that was written after its first event (an alert fired early for its window can predate the
    scenario: then it is about something else in that place)."""
    not_anomaly = [{"term": {"detector": "anomaly"}}]
    query = {"bool": {"filter": _scenario_alerts(label), "must_not": not_anomaly}}
    hits = _search(es, indices.alerts, query, size=1, sort=[{"@timestamp": "asc"}])
    return hits[0] if hits else None


def timing(es: Elasticsearch, indices: Indices, label: Label) -> Timing:
    """How far the scenario got, and when each stage first appeared."""
    alert = first_alert(es, indices, label)
    if alert is None:
        return Timing(label.scenario_id, label.kind, label.start)
    created = _when(alert["@timestamp"])
    rule = str(alert.get("rule", {}).get("name"))
    incident_id = (alert.get("incident") or {}).get("id")
    if not incident_id:
        return Timing(label.scenario_id, label.kind, label.start, created, rule=rule)
    incidents = _search(es, indices.incidents, {"term": {"incident.id": incident_id}}, size=1)
    inc = incidents[0]["incident"] if incidents else {}
    # A parent incident speaks for its children: its emails count for them too.
    ids = [incident_id] + ([inc["parent_id"]] if inc.get("parent_id") else [])
    mails = _search(es, indices.outbox, {"bool": {"filter": [
        {"terms": {"incident.id": ids}}, {"exists": {"field": "sent"}}]}},
        size=1, sort=[{"sent": "asc"}])  # fmt: skip
    return Timing(
        label.scenario_id, label.kind, label.start, created,
        incident=_when(inc.get("created")),
        email=_when(mails[0]["sent"]) if mails else None, rule=rule,
    )  # fmt: skip


@dataclass(frozen=True)
class Mails:
    """What one scenario became: its incidents (a parent counts for its children) and how many
    "new" emails each recipient got for them (goal: one incident, one email per recipient)."""

    scenario_id: str
    kind: str
    incidents: int
    new_emails: dict[str, int]

    @property
    def per_incident(self) -> float | None:
        """ "new" emails per incident and recipient (1.0: every recipient told once)."""
        if not self.incidents or not self.new_emails:
            return None
        return sum(self.new_emails.values()) / (self.incidents * len(self.new_emails))


def scenario_mails(es: Elasticsearch, indices: Indices, label: Label) -> Mails:
    """The incidents of every alert (any detector) of the scenario's place and time, and the
    "new" emails queued for them, per recipient."""
    query = {"bool": {"filter": [*_scenario_alerts(label), {"exists": {"field": "incident.id"}}]}}
    alerts = _search(es, indices.alerts, query, size=500)
    ids = sorted({str(a["incident"]["id"]) for a in alerts})
    found = _search(es, indices.incidents, {"terms": {"incident.id": ids}}, size=500) if ids else []
    roots = sorted({str(i["incident"].get("parent_id") or i["incident"]["id"]) for i in found})
    mails = _search(es, indices.outbox, {"bool": {"filter": [
        {"terms": {"incident.id": roots}}, {"term": {"notification.event": "new"}}]}},
        size=1000) if roots else []  # fmt: skip
    per: dict[str, int] = {}
    for mail in mails:
        for address in mail.get("recipients", []):
            per[address] = per.get(address, 0) + 1
    return Mails(label.scenario_id, label.kind, len(roots), per)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, int(-(-q * len(ordered) // 100)))  # ceil(q/100 * n)
    return ordered[min(rank, len(ordered)) - 1]
