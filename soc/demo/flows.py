"""The main job on the embedded defaults.

For now: make sure Elasticsearch runs (the managed node, unless ``SOC_ES_URL`` is set), install
the templates, index a few hundred sample events for real localities, and say where everything is.
Later issues grow this into the whole SOC (simulated traffic, detectors, incidents, emails,
dashboards).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from elasticsearch import Elasticsearch

from soc.config import Settings
from soc.demo.samples import sample_events
from soc.es.client import make_client, wait_until_healthy
from soc.es.indices import Indices
from soc.es.launcher import LocalNode
from soc.es.templates import SetupReport, setup
from soc.events.service import BulkResult, index_events
from soc.localities import catalogue


@dataclass(frozen=True)
class DemoReport:
    started_node: bool
    setup: SetupReport
    bulk: BulkResult
    events_in_index: int
    provinces_covered: int
    wards_covered: int


def ensure_elasticsearch(settings: Settings) -> tuple[Elasticsearch, bool]:
    """A healthy client; starts the managed node first when soc manages one."""
    started = False
    if settings.managed_es:
        started = LocalNode(settings).start()
    es = make_client(settings)
    wait_until_healthy(es, timeout=settings.es_start_timeout)
    return es, started


def run_demo(settings: Settings, *, sample_count: int = 300) -> DemoReport:
    es, started = ensure_elasticsearch(settings)
    indices = Indices(settings.index_prefix)
    report = setup(es, indices, replicas=settings.replicas)
    # Samples end at the start of the current hour: a re-run within the hour finds them already
    # indexed (same ids) instead of adding copies.
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    ingested = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    events = []
    for ev in sample_events(catalogue(), count=sample_count, end=end):
        ev["event"]["ingested"] = ingested
        events.append(ev)
    bulk = index_events(es, indices, events, refresh=True)
    total = int(es.count(index=indices.events)["count"])
    aggs = es.search(
        index=indices.events, size=0,
        aggs={
            "provinces": {"cardinality": {"field": "locality.province.code"}},
            "wards": {"cardinality": {"field": "locality.ward.code"}},
        },
    )["aggregations"]  # fmt: skip
    return DemoReport(
        started_node=started,
        setup=report,
        bulk=bulk,
        events_in_index=total,
        provinces_covered=int(aggs["provinces"]["value"]),
        wards_covered=int(aggs["wards"]["value"]),
    )
