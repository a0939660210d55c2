"""Silence: expected traffic that stopped, told apart from a silent collector and a quiet hour.

For every key the model knows, the last event within the look-back is fetched with one composite
aggregation (max ``@timestamp`` per key). A key with no event in the scored bucket is *silent*
since its last event; the events the baseline expected over that silent run give the tail
probability ``exp(-expected / dispersion)`` of such a silence (quasi-Poisson: traffic comes in
clumps). A quiet hour has a small
expectation, so it never reaches ``anomaly_alpha``; a busy commune falls silent within a bucket,
a small one after a longer run.

Before a silence is called an outage, the collectors that carried the key's traffic in training
are asked for any sign of life in the bucket (a ``collector.heartbeat`` event or any event bearing
their ``soc.collector.id``). If none of them was heard, the cause is the collector, not the
service, and a single collector-silence finding is raised instead. This module does not write.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from detectors.anomaly.baseline.model import MIN_HISTORY_HOURS, Model
from detectors.anomaly.features import (
    ALL_SERVICES,
    Key,
    Level,
    composite_pages,
    event_indices,
    traffic_query,
)
from detectors.base import iso
from soc.es.indices import Indices


@dataclass(frozen=True, slots=True)
class Silence:
    """A key that expected traffic and got none since ``since``."""

    key: Key
    since: datetime
    expected: float
    p_value: float
    collectors: tuple[str, ...]
    collector_silent: bool


@dataclass(frozen=True, slots=True)
class CollectorSilence:
    """A collector that sent nothing (not even a heartbeat) while its keys expected traffic."""

    collector: str
    keys: tuple[Key, ...]
    since: datetime
    expected: float


def last_seen(
    es: Elasticsearch,
    indices: Indices,
    start: datetime,
    end: datetime,
    level: Level,
    *,
    by_service: bool = True,
) -> dict[Key, datetime]:
    """The time of the last traffic event of every key with one in ``[start, end)``."""
    sources: list[dict[str, Any]] = [{"province": {"terms": {"field": "locality.province.code"}}}]
    if level is Level.COMMUNE:
        sources.append({"ward": {"terms": {"field": "locality.ward.code"}}})
    if by_service:
        sources.append({"service": {"terms": {"field": "service.name"}}})
    seen: dict[Key, datetime] = {}
    pages = composite_pages(
        es,
        event_indices(indices, start, end),
        traffic_query(start, end, level),
        sources,
        {"last": {"max": {"field": "@timestamp"}}},
    )
    for row in pages:
        k = row["key"]
        key = Key(level, str(k["province"]), k.get("ward"), str(k.get("service", ALL_SERVICES)))
        seen[key] = datetime.fromtimestamp(float(row["last"]["value"]) / 1000, tz=UTC)
    return seen


def heard_collectors(
    es: Elasticsearch, indices: Indices, start: datetime, end: datetime
) -> set[str]:
    """Collectors that sent anything at all (heartbeat or event) in ``[start, end)``."""
    query = {"range": {"@timestamp": {"gte": iso(start), "lt": iso(end)}}}
    sources = [{"collector": {"terms": {"field": "soc.collector.id"}}}]
    pages = composite_pages(es, event_indices(indices, start, end), query, sources)
    return {str(row["key"]["collector"]) for row in pages}


def find(
    es: Elasticsearch,
    indices: Indices,
    model: Model,
    bucket_start: datetime,
    bucket_end: datetime,
    *,
    lookback: timedelta,
    alpha: float,
) -> tuple[list[Silence], list[CollectorSilence]]:
    """Silent keys whose silence is improbable, split into outages and collector silences."""
    since_floor = bucket_end - lookback
    seen: dict[Key, datetime] = {}
    for level in Level:
        seen.update(last_seen(es, indices, since_floor, bucket_end, level))
    # A locality's all-services key was last seen when any of its services was.
    for key, when in list(seen.items()):
        every = Key(key.level, key.province, key.ward, ALL_SERVICES)
        if every not in seen or seen[every] < when:
            seen[every] = when
    heard = heard_collectors(es, indices, bucket_start, bucket_end)
    outages: list[Silence] = []
    for key in model.baselines:
        last = seen.get(key)
        if last is not None and last >= bucket_start:
            continue
        base = model.baselines[key]
        # Only a key's own history can say its traffic stopped: a new commune borrowing its
        # peers' level was never seen sending, so its silence proves nothing.
        if base.level <= 0 or base.hours < MIN_HISTORY_HOURS:
            continue
        # The run starts just after the last event (or at the look-back's edge if none was seen).
        since = last + timedelta(milliseconds=1) if last is not None else since_floor
        expected = model.expected(key, base, since, bucket_end)
        p = math.exp(-expected / base.dispersion)  # quasi-Poisson: clumps make silence likelier
        if p >= alpha:
            continue
        silent = bool(base.collectors) and not (set(base.collectors) & heard)
        outages.append(Silence(key, since, expected, p, base.collectors, silent))
    return [s for s in outages if not s.collector_silent], _by_collector(outages)


def _by_collector(silences: list[Silence]) -> list[CollectorSilence]:
    """One finding per silent collector, listing the keys it left without data."""
    keys: dict[str, list[Silence]] = defaultdict(list)
    for s in silences:
        if s.collector_silent:
            for collector in s.collectors:
                keys[collector].append(s)
    return [
        CollectorSilence(
            c,
            tuple(s.key for s in found),
            min(s.since for s in found),
            sum(s.expected for s in found),
        )
        for c, found in sorted(keys.items())
    ]
