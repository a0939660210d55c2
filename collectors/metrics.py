"""Per-source counters of one collector, as Prometheus metrics and as a plain snapshot.

The names are the accounting identity of the issue: for every source,
``read + resumed = indexed + duplicates + deadlettered + dropped + (still in the spool)``, where
``resumed`` counts what an earlier run left in the spool. ``duplicates``
are actions Elasticsearch already had (a replay after a crash, a resent message, a byte-identical
dead letter); ``dropped`` is only ever UDP syslog: datagrams that arrived while the spool was
full, and those the kernel dropped from the socket's full receive buffer (counted in ``read`` as
well: they reached the host). ``pending`` (a gauge) is what a source holds before ``read``: a
file's last line without its newline. The snapshot is what ``soc collect status`` shows (the
runner writes it to ``status.json``). This module must not do I/O other than serving metrics.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

COUNTERS = (
    "read",
    "resumed",
    "indexed",
    "duplicates",
    "deadlettered",
    "dropped",
    "retries",
    "spooled",
)
_HELP = {
    "read": "Lines, messages or probe results read by the source.",
    "resumed": "Actions found in the spool at start-up (read by an earlier run, not yet shipped).",
    "indexed": "Events (and dead letters) Elasticsearch created.",
    "duplicates": "Actions Elasticsearch already had (replays, resends, identical dead letters).",
    "deadlettered": "Inputs kept in the dead-letter index instead of the events (stored once).",
    "dropped": "UDP syslog messages dropped: spool full, or the kernel's receive buffer full.",
    "retries": "Bulk attempts that failed and were retried (Elasticsearch slow, 429 or down).",
    "spooled": "Actions written to the disk spool.",
}


class Metrics:
    """Thread-safe counters; one Prometheus registry per collector (tests run many)."""

    def __init__(self, collector_id: str) -> None:
        self.collector_id = collector_id
        self.registry = CollectorRegistry()
        self._lock = threading.Lock()
        self._values: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
        self._prom = {
            name: Counter(
                f"soc_collector_{name}",
                _HELP[name],
                ["collector", "source"],
                registry=self.registry,
            )
            for name in COUNTERS
        }
        self._lag = Gauge(
            "soc_collector_lag_seconds",
            "Seconds from read to acknowledged by Elasticsearch, last batch.",
            ["collector", "source"],
            registry=self.registry,
        )
        self._pending = Gauge(
            "soc_collector_spool_bytes",
            "Bytes waiting in the disk spool.",
            ["collector"],
            registry=self.registry,
        )
        self._pending_lines = Gauge(
            "soc_collector_pending",
            "Lines a source holds, not counted in read yet (a last line without newline).",
            ["collector", "source"],
            registry=self.registry,
        )
        self._lags: dict[str, float] = {}
        self._pendings: dict[str, int] = {}
        self.spool_bytes = 0

    def inc(self, source: str, name: str, amount: int = 1) -> None:
        if amount <= 0:
            return
        with self._lock:
            self._values[source][name] += amount
        self._prom[name].labels(self.collector_id, source).inc(amount)

    def lag(self, source: str, seconds: float) -> None:
        self._lags[source] = seconds
        self._lag.labels(self.collector_id, source).set(seconds)

    def set_pending(self, source: str, lines: int) -> None:
        if lines or source in self._pendings:
            self._pendings[source] = lines
            self._pending_lines.labels(self.collector_id, source).set(lines)

    def pending(self, size: int) -> None:
        self.spool_bytes = size
        self._pending.labels(self.collector_id).set(size)

    def get(self, source: str, name: str) -> int:
        with self._lock:
            return int(self._values[source][name])

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            sources: dict[str, dict[str, Any]] = {
                s: {k: int(v) for k, v in c.items()} for s, c in self._values.items()
            }
        for source, lag in self._lags.items():
            sources.setdefault(source, dict.fromkeys(COUNTERS, 0))["lag_seconds"] = round(lag, 3)
        for source, lines in self._pendings.items():
            sources.setdefault(source, dict.fromkeys(COUNTERS, 0))["pending"] = lines
        return {"collector": self.collector_id, "spool_bytes": self.spool_bytes, "sources": sources}
