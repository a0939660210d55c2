"""The simulation engine: baseline traffic plus scenarios, hour by hour, as records or events.

A :class:`Plan` says what to simulate (seed, scale, which provinces and services, which scenarios);
:func:`records` yields the records of any period in time order, identical for the same plan and
period. Writing them somewhere (Elasticsearch, files, syslog, HTTP) is the sinks' and flows' job;
this module does no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from soc.localities import Catalogue, catalogue
from soc.services import Service
from soc.simulate import effects, probes
from soc.simulate.formats import to_ecs
from soc.simulate.models import Label, Record
from soc.simulate.profile import LOCAL
from soc.simulate.scenarios import Kind, Scenario
from soc.simulate.traffic import HOUR, SyncOutage, hour_records, stream, sync_runs, synced
from soc.timeutil import iso

#: Ingest delay stamped on backfilled events, so windows on ``event.ingested`` see history too.
INGEST_DELAY = timedelta(seconds=2)


@dataclass(frozen=True)
class Plan:
    """What to simulate. Empty ``provinces`` means all 34."""

    seed: int = 1
    scale: float = 1.0
    provinces: tuple[str, ...] = ()
    services: tuple[Service, ...] = tuple(Service)
    scenarios: tuple[Scenario, ...] = field(default=())
    #: Include the health-probe results of every fleet endpoint (``probes``): history for the
    #: anomaly model. Off by default: they are not log lines, and live runs probe for real.
    probes: bool = False

    def province_codes(self, cat: Catalogue) -> list[str]:
        if not self.provinces:
            return [p.code for p in cat.provinces]
        return [cat.province(p).code for p in self.provinces]

    def labels(self) -> list[Label]:
        return [label for scn in self.scenarios for label in scn.labels()]


def floor_hour(when: datetime) -> datetime:
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def local_midnight(when: datetime) -> datetime:
    """Midnight in Viet Nam of the local day of ``when``: where relative scenario starts count
    from in a backfill, so "+1d09h" means the second day at 09:00 local."""
    local = when.astimezone(LOCAL)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def hours(start: datetime, end: datetime) -> Iterator[datetime]:
    hour = floor_hour(start)
    while hour < end:
        yield hour
        hour += HOUR


def records(plan: Plan, start: datetime, end: datetime) -> Iterator[Record]:
    """Every record of ``[start, end)`` in time order (one hour is sorted at a time)."""
    for hour in hours(start, end):
        chunk = hour_of(plan, hour)
        yield from (r for r in chunk if start <= r.at < end)


def hour_of(plan: Plan, hour: datetime) -> list[Record]:
    """All records of the hour starting at ``hour``, scenarios applied, sorted by time."""
    cat = catalogue()
    out: list[Record] = []
    for province in plan.province_codes(cat):
        for service in plan.services:
            out.extend(_service_hour(plan, province, service, hour))
        if plan.probes:
            out.extend(probes.hour_probes(cat, plan.seed, province, hour, plan.scenarios))
    out.sort(key=lambda r: r.at)
    return out


def _service_hour(plan: Plan, province: str, service: Service, hour: datetime) -> list[Record]:
    """One service's records of one province and hour, scenarios applied (unsorted)."""
    cat = catalogue()
    active = [s for s in plan.scenarios
              if s.where.province.code == province and s.active(hour, hour + HOUR)]  # fmt: skip
    if service is Service.PORTAL_SYNC:
        # What the sync job pushes is what the one-stop shop really did, scenarios included (a
        # dossier that failed in a 5xx storm is not pushed; a silent commune changes nothing).
        oss = [*_oss_hour(plan, province, hour - HOUR), *_oss_hour(plan, province, hour)]
        # A stopped sync also shows in the job's own run records: its communes fail every run,
        # or (a stop of the whole job) there is no run record at all.
        outages = [
            SyncOutage(s.start, s.end, frozenset(w.ward.code for w in s.wards if w.ward))
            for s in active
            if s.kind is Kind.SYNC_STOPPED
        ]
        base = [
            *synced(plan.seed, oss, hour),
            *sync_runs(cat, plan.seed, province, hour, outages),
        ]
    else:
        base = hour_records(cat, plan.seed, province, service, hour, plan.scale)
    for scn in active:
        rng = stream(plan.seed, "scenario", scn.id, service.value, hour.isoformat())
        changed = (effects.transform(scn, r, rng) for r in base)
        base = [r for r in changed if r is not None]
        if scn.service is service:
            base.extend(effects.inject(scn, hour, hour + HOUR, rng))
    return base


@lru_cache(maxsize=128)
def _oss_hour(plan: Plan, province: str, hour: datetime) -> tuple[Record, ...]:
    # Each hour's sync needs the one-stop shop of that hour and the one before: cached, so a run
    # hour after hour computes each one-stop-shop hour once.
    return tuple(_service_hour(plan, province, Service.ONE_STOP_SHOP, hour))


def events(plan: Plan, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    """The normalised ECS events of ``[start, end)``, as the collectors would produce them."""
    for rec in records(plan, start, end):
        event = to_ecs(rec)
        event["event"]["ingested"] = iso(rec.at + INGEST_DELAY)
        yield event
