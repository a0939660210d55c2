"""Elasticsearch goes away while the collector ships: a node of the test's own is stopped, lines
keep arriving and wait in the spool, the node is started again, and the index ends with exactly the
number of lines written. Nothing lost, nothing doubled."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from collectors.config import load_config
from collectors.flows import Collector
from soc.es.client import make_client, wait_until_healthy
from soc.es.indices import Indices
from soc.es.launcher import LocalNode
from soc.es.templates import setup
from tests.collectors.conftest import count, write_config
from tests.collectors.test_sources import access, wait_for
from tests.conftest import new_run_dir, node_settings


@pytest.fixture
def node() -> Iterator[LocalNode]:
    run_dir = new_run_dir("collect-outage")
    own = LocalNode(node_settings(run_dir))
    own.start()
    try:
        yield own
    finally:
        own.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.mark.slow
def test_outage_loses_nothing_and_doubles_nothing(node: LocalNode, tmp_path: Path) -> None:
    from soc.config import load_settings

    es: Elasticsearch = make_client(load_settings(es_url=node.url, es_request_timeout=5))
    indices = Indices("outage")
    setup(es, indices)
    logs = tmp_path / "logs" / "hn"
    logs.mkdir(parents=True)
    log = logs / "portal.log"
    log.write_bytes(b"".join(access(i) for i in range(1000)))
    cfg = write_config(
        tmp_path,
        [
            {
                "id": "tail",
                "type": "file",
                "paths": [str(logs / "*.log")],
                "format": "access",
                "poll_interval": 0.05,
            }
        ],
        batch_size=250,
        retry_max=0.5,
    )
    collector = Collector(load_config(cfg), es, indices)
    collector.start()
    try:
        wait_for(lambda: collector.metrics.get("tail", "indexed") == 1000, timeout=60)
        node.stop()
        with log.open("ab") as fh:
            fh.write(b"".join(access(i) for i in range(1000, 3000)))
        wait_for(lambda: collector.metrics.get("tail", "read") == 3000, timeout=30)
        wait_for(lambda: collector.metrics.get("tail", "retries") >= 2, timeout=30)
        assert collector.spool.pending_bytes() > 0
        node.start()
        wait_until_healthy(es, timeout=60)
        # A bulk cut off by the stop may have been applied without an answer: its replay finds
        # the events there (409, counted as duplicates), which is exactly what must not double.
        shipped = ("indexed", "duplicates")
        wait_for(lambda: sum(collector.metrics.get("tail", k) for k in shipped) == 3000, 180)
    finally:
        assert collector.stop(drain_timeout=30)
    assert count(es, indices.events) == 3000
    m = collector.metrics
    assert m.get("tail", "read") == 3000
    assert m.get("tail", "indexed") + m.get("tail", "duplicates") == 3000
    twice = es.search(
        index=indices.events,
        size=0,
        aggs={"t": {"terms": {"field": "log.offset", "min_doc_count": 2}}},
    )
    assert twice["aggregations"]["t"]["buckets"] == []
    es.close()
