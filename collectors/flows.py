"""Run one collector: wire config → sources → pipeline → spool → shipper, and report its status.

:class:`Collector` owns the threads (one per source, one shipper, one status writer) and the
optional Prometheus endpoint. ``status.json`` in the state directory is rewritten every second with
the counters (what ``soc collect status`` reads). Stopping stops the sources first, then ships what
the spool holds (bounded by ``drain_timeout``); what is left waits in the spool for the next run.
Parsing and normalising run in worker processes (``parse_workers``, collectors/workers.py),
started with the collector and ended once its sources have stopped.
This module must not parse or normalise.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from elasticsearch import Elasticsearch
from prometheus_client import start_http_server

from collectors import parsers
from collectors.base import Pipeline, Source
from collectors.config import (
    CollectorConfig,
    FileSourceSpec,
    HttpSourceSpec,
    ProbeSourceSpec,
    SyslogSourceSpec,
)
from collectors.metrics import Metrics
from collectors.normalise import Limits, Normaliser
from collectors.shipper import Shipper
from collectors.sources import (
    FileTailSource,
    HttpPushSource,
    ProbeSource,
    SyslogTcpSource,
    SyslogUdpSource,
)
from collectors.sources.probe import Target
from collectors.spool import Spool
from collectors.workers import Normalisers, tune_gc
from soc.es.indices import Indices
from soc.localities import catalogue

log = logging.getLogger(__name__)

#: GIL switch interval of a running collector (seconds; Python's default is 0.005).
SWITCH_INTERVAL = 0.001


class Collector:
    """One running collector (see the module docstring)."""

    def __init__(
        self,
        config: CollectorConfig,
        es: Elasticsearch,
        indices: Indices,
        prepare: Callable[[], None] | None = None,
    ) -> None:
        c = config.spec.collector
        self.config = config
        self.metrics = Metrics(config.id)
        self.spool = Spool(config.state_dir / "spool", max_bytes=int(c.spool_max_mb * 1024 * 1024))
        archived = frozenset(
            s.id for s in config.spec.sources if isinstance(s, FileSourceSpec) and s.archived
        )
        limits = Limits(max_line_bytes=c.max_line_kb * 1024, archived=archived)
        self.normaliser = Normaliser(config.inventory, indices, config.id, limits)
        self.normalisers = Normalisers(self.normaliser, c.parse_workers)
        self.pipeline = Pipeline(self.normaliser, self.spool, self.metrics, self.normalisers)
        for source, waiting in self.spool.pending_by_source().items():
            self.metrics.inc(source, "resumed", waiting)
        self.shipper = Shipper(
            es,
            self.spool,
            self.metrics,
            deadletter_index=indices.deadletter,
            batch_size=c.batch_size,
            flush_interval=c.flush_interval,
            retry_max=c.retry_max,
            prepare=prepare,
        )
        self.sources: list[Source] = [self._source(spec) for spec in config.spec.sources]
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._status_lock = threading.Lock()
        self.metrics_port: int | None = None
        self._metrics_server: Any = None

    def _source(self, spec: Any) -> Source:
        state = self.config.state_dir
        if isinstance(spec, FileSourceSpec):
            return FileTailSource(
                spec.id,
                self.pipeline,
                paths=list(spec.paths),
                parser=parsers.get(spec.format),
                state_dir=state,
                poll_interval=spec.poll_interval,
                settle=spec.partial_settle,
            )
        if isinstance(spec, SyslogSourceSpec):
            return self._syslog(spec)
        if isinstance(spec, HttpSourceSpec):
            return HttpPushSource(
                spec.id,
                self.pipeline,
                inventory=self.config.inventory,
                host=spec.host,
                port=spec.port,
                require_token=spec.require_token,
                max_body_bytes=int(spec.max_body_mb * 1024 * 1024),
            )
        if isinstance(spec, ProbeSourceSpec):
            cat = catalogue()
            targets = [
                Target(
                    t.name,
                    t.url,
                    t.service,
                    cat.locality(t.province, t.ward),
                    t.keyword,
                    t.expect_status,
                )
                for t in spec.targets
            ]
            return ProbeSource(
                spec.id,
                self.pipeline,
                targets=targets,
                interval=spec.interval,
                timeout=spec.timeout,
                ca_file=spec.ca_file,
                report_every=spec.report_every,
            )
        raise TypeError(f"no source for {spec!r}")

    def _syslog(self, spec: SyslogSourceSpec) -> Source:
        if spec.type == "syslog-udp":
            return SyslogUdpSource(
                spec.id,
                self.pipeline,
                host=spec.host,
                port=spec.port,
                wanted_buffer=int(spec.receive_buffer_mb * 1024 * 1024),
            )
        return SyslogTcpSource(
            spec.id,
            self.pipeline,
            host=spec.host,
            port=spec.port,
            max_frame=spec.max_frame_kb * 1024,
        )

    def source(self, source_id: str) -> Source:
        return next(s for s in self.sources if s.id == source_id)

    def start(self) -> None:
        c = self.config.spec.collector
        # The sources are CPU-bound Python; the shipper mostly waits on sockets. At the default
        # 5 ms GIL switch interval, every wake-up of the shipper (request sent, answer in) can
        # wait 5 ms behind a parsing source while Elasticsearch idles: ask for the GIL sooner.
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)
        self.start_workers()
        self.pipeline.ready.set()  # push sources answer 503 until here
        if c.metrics_port:
            server, _thread = self._metrics_server = start_http_server(
                c.metrics_port, c.metrics_host, registry=self.metrics.registry
            )
            self.metrics_port = int(server.server_address[1])
        self._spawn(self.shipper.run, "shipper")
        for source in self.sources:
            self._spawn(source.run, f"source-{source.id}")
            source.ready.wait(5)
        self._spawn(self._status_loop, "status")
        log.info(
            "collector %s started: %d sources, state in %s",
            self.config.id,
            len(self.sources),
            self.config.state_dir,
        )

    def start_workers(self) -> None:
        """Start the parse workers (once; :meth:`start` does it, a benchmark may do it first)."""
        tune_gc()
        self.normalisers.start()

    def stop(self, drain_timeout: float = 10.0) -> bool:
        """Stop reading, ship what is spooled (up to ``drain_timeout``); True if all went out."""
        for source in self.sources:
            source.stop()
        for t in self._threads:
            if t.name.startswith("source-"):
                t.join(10)
        self.normalisers.close()
        self.shipper.stop()
        for t in self._threads:
            if t.name == "shipper":
                t.join(30)
        self.shipper.resume()
        drained = self.shipper.drain(drain_timeout)
        self._stopping.set()
        self.write_status()
        self.spool.close()
        if self._metrics_server is not None:
            self._metrics_server[0].shutdown()
            self._metrics_server[0].server_close()
        return drained

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=_logged(target, name), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _status_loop(self) -> None:
        while not self._stopping.wait(1.0):
            self.write_status()

    def status(self) -> dict[str, Any]:
        for source in self.sources:
            source.poll_counters()
            self.metrics.set_pending(source.id, source.pending())
        snap = self.metrics.snapshot()
        snap["pid"] = os.getpid()
        snap["written_at"] = time.time()
        snap["health"] = {s.id: {"type": s.type_name, **s.health()} for s in self.sources}
        snap["workers"] = {"pids": self.normalisers.pids(), "restarts": self.normalisers.restarts}
        return snap

    def write_status(self) -> None:
        path = self.config.state_dir / "status.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        # The status thread and stop() may both write: one at a time, or one's rename of the
        # shared temporary file fails under the other (FileNotFoundError at shutdown).
        with self._status_lock:
            tmp.write_bytes(orjson.dumps(self.status(), option=orjson.OPT_INDENT_2))
            tmp.replace(path)


def read_status(state_dir: Path) -> dict[str, Any] | None:
    path = state_dir / "status.json"
    if not path.exists():
        return None
    body: dict[str, Any] = orjson.loads(path.read_bytes())
    return body


def _logged(target: Callable[[], None], name: str) -> Callable[[], None]:
    def run() -> None:
        try:
            target()
        except Exception:
            # A dead thread would silently stop a source: say so loudly, with the traceback.
            log.exception("collector thread %s died", name)

    return run
