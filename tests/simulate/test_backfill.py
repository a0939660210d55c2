"""Backfill indexes the simulated events into real Elasticsearch, once each, with labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from elasticsearch import Elasticsearch

from soc.es.indices import Indices
from soc.localities import catalogue
from soc.simulate import labels as labels_file
from soc.simulate import scenarios
from soc.simulate.flows import backfill
from soc.simulate.service import Plan, events

DEMO = Path(__file__).resolve().parents[2] / "scenarios" / "demo.yaml"
ORIGIN = datetime(2026, 11, 23, tzinfo=UTC) - timedelta(hours=7)


def test_backfill_indexes_every_event_once_and_writes_labels(
    es: Elasticsearch, ready: Indices, tmp_path: Path
) -> None:
    found = [s for s in scenarios.load(DEMO, catalogue(), ORIGIN) if s.id == "web-attack-hue"]
    scn = found[0]
    plan = Plan(seed=4, provinces=("46", "12"), scenarios=tuple(found))
    start, end = scn.start - timedelta(minutes=30), scn.end + timedelta(minutes=30)
    path = tmp_path / "labels.jsonl"
    report = backfill(es, ready, plan, start, end, labels_path=path)
    expected = sum(1 for _ in events(plan, start, end))
    assert report.created == expected == report.total > 500
    assert report.rejected == []
    assert report.store_bytes > 0
    assert int(es.count(index=ready.events)["count"]) == expected
    hits = es.count(index=ready.events, query={"bool": {"filter": [
        {"term": {"locality.ward.code": scn.where.ward.code if scn.where.ward else ""}},
        {"term": {"service.name": "web-portal"}},
        {"range": {"http.response.status_code": {"gte": 400}}},
        {"range": {"@timestamp": {"gte": scn.start.isoformat(), "lt": scn.end.isoformat()}}},
    ]}})["count"]  # fmt: skip
    assert hits > 300
    [label] = labels_file.read(path)
    assert (label.scenario_id, label.service, label.ward_code) == (
        "web-attack-hue",
        "web-portal",
        scn.where.ward.code if scn.where.ward else None,
    )

    again = backfill(es, ready, plan, start, end)
    assert again.created == 0
    assert again.duplicates == expected
    assert int(es.count(index=ready.events)["count"]) == expected
