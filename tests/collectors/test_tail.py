"""File tail: a last line without its newline is pending (counted, visible), then shipped exactly
once, at settle time, rotation, removal, truncation or import; never doubled when completed."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from collectors.flows import Collector
from soc.es.indices import Indices
from tests.collectors.conftest import count
from tests.collectors.test_sources import access, identity_holds, wait_for


def _spec(logs: Path, settle: float) -> list[dict[str, Any]]:
    return [{"id": "tail", "type": "file", "paths": [str(logs / "*.log")], "format": "access",
             "poll_interval": 0.05, "partial_settle": settle}]  # fmt: skip


def _flagged(es: Elasticsearch, ready: Indices, flag: str) -> int:
    return count(es, ready.events, {"term": {"soc.flags": flag}})


def test_last_line_without_newline_is_shipped_after_settle_and_not_doubled(
    run_collector: Callable[..., Collector], es: Elasticsearch, ready: Indices, tmp_path: Path
) -> None:
    logs = tmp_path / "logs" / "hn"
    logs.mkdir(parents=True)
    log = logs / "portal.log"
    log.write_bytes(access(1) + access(2) + access(3).rstrip(b"\n"))  # a finished file
    c = run_collector(_spec(logs, settle=2))
    wait_for(lambda: c.metrics.get("tail", "read") == 2 and c.source("tail").pending() == 1)
    wait_for(lambda: c.metrics.get("tail", "read") == 3)  # shipped once settled
    assert c.source("tail").pending() == 0
    # the writer was only slow: the rest of the line arrives, then a new line
    with log.open("ab") as fh:
        fh.write(b" trailing words\n" + access(4))
    wait_for(lambda: c.metrics.get("tail", "read") == 5)
    assert c.stop(drain_timeout=20)
    identity_holds(c, "tail")
    assert count(es, ready.events, {"term": {"url.path": "/p/3"}}) == 1  # not doubled
    assert _flagged(es, ready, "line_unterminated") == 1
    assert count(es, ready.deadletter) == 1  # " trailing words": its own line, no event
    letter = es.search(index=ready.deadletter)["hits"]["hits"][0]["_source"]
    assert letter["deadletter"]["raw"] == " trailing words"


def test_pending_line_waits_through_restart_and_ships_at_truncation_or_removal(
    run_collector: Callable[..., Collector], es: Elasticsearch, ready: Indices, tmp_path: Path
) -> None:
    logs = tmp_path / "logs" / "hn"
    logs.mkdir(parents=True)
    log = logs / "portal.log"
    log.write_bytes(access(1) + access(2).rstrip(b"\n"))
    c = run_collector(_spec(logs, settle=0))  # 0: never shipped on time alone
    wait_for(lambda: c.metrics.get("tail", "read") == 1)
    time.sleep(0.5)
    assert c.source("tail").pending() == 1
    assert c.status()["sources"]["tail"]["pending"] == 1  # what `soc collect status` shows
    assert c.stop(drain_timeout=20)  # not shipped at stop: its offset is not persisted
    again = run_collector(_spec(logs, settle=0))
    wait_for(lambda: again.source("tail").pending() == 1)
    assert again.metrics.get("tail", "read") == 0
    with log.open("r+b") as fh:  # copy-truncate: what was there is final
        fh.truncate(0)
    wait_for(lambda: again.metrics.get("tail", "read") == 1)
    log.write_bytes(access(5) + access(6).rstrip(b"\n"))
    wait_for(lambda: again.metrics.get("tail", "read") == 2 and again.source("tail").pending() > 0)
    log.unlink()  # removed (rotated away): shipped as it is
    wait_for(lambda: again.metrics.get("tail", "read") == 3)
    assert again.stop(drain_timeout=20)
    identity_holds(again, "tail")
    assert count(es, ready.events) == 4
    assert _flagged(es, ready, "line_unterminated") == 2
