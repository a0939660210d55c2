"""``soc collect import``: read archived log files once, to their end, keeping each event's time.

For a SOC investigating last month: the files are read like a tail that never waits (a last line
without its newline is shipped too: the files are complete), normalised by the collector's
inventory with the source marked *archived* (events keep their own ``@timestamp`` however old,
``event.ingested`` is when they were read, flag ``imported``; see collectors/normalise.py), spooled
in a spool of their own (``<state_dir>/imports/<source>-<pid>/``, removed once shipped) and shipped
by the usual shipper. Live detection selects events ingested in its window *and* stamped within its
look-back, so a month-old event pages nobody; backtests and searches see it at its own time.

Event ids are those of the same lines read by a file source named like the import (collector,
source, path, offset, bytes): importing a file twice doubles nothing. The summary is the accounting
of the run: ``read = indexed + duplicates + deadlettered + dropped + left in the spool``.
This module must not parse lines itself.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from elasticsearch import Elasticsearch

from collectors import parsers
from collectors.base import Pipeline
from collectors.config import CollectorConfig
from collectors.metrics import Metrics
from collectors.normalise import Limits, Normaliser
from collectors.shipper import Shipper
from collectors.sources.tail import FileTailSource
from collectors.spool import Spool
from collectors.workers import Normalisers, tune_gc
from soc.errors import CollectorConfigError
from soc.es.indices import Indices
from soc.inventory import Inventory

log = logging.getLogger(__name__)

COUNTS = ("read", "indexed", "duplicates", "deadlettered", "dropped")


@dataclasses.dataclass(frozen=True)
class ImportSummary:
    files: int
    counts: dict[str, int]
    left_in_spool: int
    seconds: float
    state_dir: Path

    @property
    def balanced(self) -> bool:
        """Whether every line read is accounted for and nothing is left to ship."""
        c = self.counts
        settled = c["indexed"] + c["duplicates"] + c["deadlettered"] + c["dropped"]
        return c["read"] == settled and self.left_in_spool == 0


def run_import(
    config: CollectorConfig,
    es: Elasticsearch,
    indices: Indices,
    files: list[Path],
    *,
    fmt: str = "auto",
    source_id: str = "import",
    system: str | None = None,
    prepare: Callable[[], None] | None = None,
    drain_timeout: float = 300.0,
) -> ImportSummary:
    """Import ``files`` (see the module docstring); returns once all is shipped or timed out."""
    started = time.monotonic()
    paths = [str(f.resolve()) for f in files]
    c = config.spec.collector
    state = config.state_dir / "imports" / f"{source_id}-{threading.get_native_id()}"
    metrics = Metrics(config.id)
    spool = Spool(state / "spool", max_bytes=int(c.spool_max_mb * 1024 * 1024))
    pipeline = _pipeline(config, indices, spool, metrics, source_id, system, paths)
    normalisers = pipeline.normalisers
    shipper = Shipper(es, spool, metrics, deadletter_index=indices.deadletter,
                      batch_size=c.batch_size, flush_interval=c.flush_interval,
                      retry_max=c.retry_max, prepare=prepare)  # fmt: skip
    tail = FileTailSource(source_id, pipeline, paths=[glob.escape(p) for p in paths],
                          parser=parsers.get(fmt), state_dir=state, settle=0)  # fmt: skip
    tune_gc()
    normalisers.start()
    pipeline.ready.set()
    shipping = threading.Thread(target=shipper.run, name="import-shipper", daemon=True)
    shipping.start()
    try:
        while tail.poll():
            pass
        tail.finish()  # the files are complete: their last lines go too
    finally:
        tail.close()
        normalisers.close()
        shipper.stop()
        shipping.join(60)
        shipper.resume()
        shipper.drain(drain_timeout)
        left = spool.pending_bytes()
        spool.close()
    counts = {name: metrics.get(source_id, name) for name in COUNTS}
    summary = ImportSummary(len(paths), counts, left, time.monotonic() - started, state)
    if summary.balanced:
        shutil.rmtree(state, ignore_errors=True)
    return summary


def _pipeline(
    config: CollectorConfig,
    indices: Indices,
    spool: Spool,
    metrics: Metrics,
    source_id: str,
    system: str | None,
    paths: list[str],
) -> Pipeline:
    """The import's pipeline: the collector's limits, its source archived."""
    c = config.spec.collector
    limits = Limits(max_line_bytes=c.max_line_kb * 1024, archived=frozenset({source_id}))
    inventory = _attributed(config.inventory, system, paths)
    normaliser = Normaliser(inventory, indices, config.id, limits)
    return Pipeline(normaliser, spool, metrics, Normalisers(normaliser, c.parse_workers))


def _attributed(inventory: Inventory, system: str | None, paths: list[str]) -> Inventory:
    """The inventory, with ``system`` (if named) first for exactly these files."""
    if system is None:
        return inventory
    named = next((s for s in inventory.systems if s.id == system), None)
    if named is None:
        known = ", ".join(s.id for s in inventory.systems)
        raise CollectorConfigError(f"--system {system!r} is not in the inventory ({known})")
    exact = tuple(re.compile(re.escape(p)) for p in paths)
    return Inventory((dataclasses.replace(named, path_patterns=exact), *inventory.systems))
