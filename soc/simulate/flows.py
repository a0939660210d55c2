"""Simulator runs that touch the outside world: backfill into Elasticsearch, write log files.

Backfill is the fast path for training and tests: it indexes the normalised ECS events directly
with :func:`soc.events.service.index_events` (deterministic ids, ``op_type=create``), so running it
twice, or after a crash, doubles nothing. File output goes through the real collector path.
Both write the ground-truth labels of the plan's scenarios.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from soc import timeutil
from soc.es.indices import Indices
from soc.events.service import index_events
from soc.simulate import labels as labels_file
from soc.simulate.profile import LOCAL
from soc.simulate.service import Plan, events, records
from soc.simulate.sinks import FileSink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackfillReport:
    created: int
    duplicates: int
    rejected: list[dict[str, Any]]
    per_day: dict[str, int]  # local (Asia/Ho_Chi_Minh) date -> events generated
    seconds: float
    store_bytes: int
    labels: int = 0

    @property
    def total(self) -> int:
        return sum(self.per_day.values())


def backfill(
    es: Elasticsearch,
    indices: Indices,
    plan: Plan,
    start: datetime,
    end: datetime,
    *,
    labels_path: Path | None = None,
    chunk_size: int = 2000,
) -> BackfillReport:
    """Index every event of ``[start, end)``; write the labels first (they are the promise)."""
    written = labels_file.write(labels_path, plan.labels()) if labels_path else 0
    per_day: Counter[str] = Counter()

    def counted() -> Any:
        for event in events(plan, start, end):
            stamp = timeutil.parse(event["@timestamp"])
            per_day[stamp.astimezone(LOCAL).date().isoformat()] += 1
            yield event

    began = time.monotonic()
    bulk = index_events(es, indices, counted(), chunk_size=chunk_size, refresh=True)
    took = time.monotonic() - began
    stats = es.indices.stats(index=indices.events, metric="store")
    size = int(stats["_all"]["primaries"]["store"]["size_in_bytes"])
    log.info("backfill done created=%d duplicates=%d rejected=%d seconds=%.1f",
             bulk.created, bulk.duplicates, len(bulk.errors), took)  # fmt: skip
    return BackfillReport(created=bulk.created, duplicates=bulk.duplicates,
                          rejected=bulk.errors[:20], per_day=dict(sorted(per_day.items())),
                          seconds=took, store_bytes=size, labels=written)  # fmt: skip


@dataclass(frozen=True)
class FilesReport:
    lines: int
    files: int
    root: Path
    labels: int


def write_files(plan: Plan, start: datetime, end: datetime, root: Path,
                *, labels_path: Path | None = None) -> FilesReport:  # fmt: skip
    """Append the log lines of ``[start, end)`` under ``root`` (one file per system)."""
    written = labels_file.write(labels_path or root / "labels.jsonl", plan.labels())
    sink = FileSink(root)
    batch = []
    for rec in records(plan, start, end):
        batch.append(rec)
        if len(batch) >= 20_000:
            sink.write(batch)
            batch = []
    sink.write(batch)
    files = len(list(root.rglob("*.log")))
    return FilesReport(lines=sink.lines, files=files, root=root, labels=written)
