"""Live mode: traffic in real time (or a chosen multiple of it) into the chosen sinks.

The simulated clock starts at the wall clock (or a given start) and runs ``speed`` times as fast;
every tick the records of the elapsed slice go to every sink, and the mock fleet (when there is
one) is set to what the scenarios say at that moment. Records come from the same engine as a
backfill, so a live run and a backfill of the same period with the same seed are identical.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from elasticsearch import Elasticsearch

from soc.es.indices import Indices
from soc.events.service import index_events
from soc.simulate.fleet import Fleet
from soc.simulate.formats import to_ecs
from soc.simulate.models import Record
from soc.simulate.service import INGEST_DELAY, Plan, floor_hour, hour_of
from soc.timeutil import iso

log = logging.getLogger(__name__)


class Sink(Protocol):
    def write(self, batch: Sequence[Record]) -> None: ...


class EsSink:
    """Indexes the records' ECS events directly (the demo path when no collector runs)."""

    def __init__(self, es: Elasticsearch, indices: Indices) -> None:
        self.es, self.indices, self.lines = es, indices, 0

    def write(self, batch: Sequence[Record]) -> None:
        docs = []
        for rec in batch:
            doc = to_ecs(rec)
            doc["event"]["ingested"] = iso(rec.at + INGEST_DELAY)
            docs.append(doc)
        result = index_events(self.es, self.indices, docs)
        if result.errors:
            log.error("live events rejected count=%d first=%s", len(result.errors),
                      result.errors[0])  # fmt: skip
        self.lines += result.created


@dataclass(frozen=True)
class LiveReport:
    start: datetime
    end: datetime
    records: int
    ticks: int


class _HourCache:
    """The current hour's records, generated once and handed out slice by slice."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.hour: datetime | None = None
        self.records: list[Record] = []

    def between(self, start: datetime, end: datetime) -> list[Record]:
        out: list[Record] = []
        hour = floor_hour(start)
        while hour < end:
            if hour != self.hour:
                self.hour, self.records = hour, hour_of(self.plan, hour)
            out.extend(r for r in self.records if start <= r.at < end)
            hour += timedelta(hours=1)
        return out


def run_live(
    plan: Plan,
    sinks: Sequence[Sink],
    *,
    speed: float = 1.0,
    duration: timedelta | None = None,
    tick: float = 1.0,
    start: datetime | None = None,
    fleet: Fleet | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> LiveReport:
    """Run until ``duration`` of simulated time has passed (forever when None)."""
    sim_start = start or datetime.now(UTC)
    wall_start = clock()
    cache = _HourCache(plan)
    done, ticks, sent = sim_start, 0, 0
    stop_at = sim_start + duration if duration is not None else None
    while stop_at is None or done < stop_at:
        sleep(tick)
        now = sim_start + timedelta(seconds=(clock() - wall_start) * speed)
        if stop_at is not None:
            now = min(now, stop_at)
        batch = cache.between(done, now)
        for sink in sinks:
            sink.write(batch)
        if fleet is not None:
            fleet.apply(plan.scenarios, now)
        sent += len(batch)
        ticks += 1
        done = now
        log.debug("live tick until=%s records=%d", now.isoformat(), len(batch))
    return LiveReport(start=sim_start, end=done, records=sent, ticks=ticks)
