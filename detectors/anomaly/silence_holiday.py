"""Silences on a public holiday: how much of its slot's traffic a key carries that day.

A public holiday takes a Sunday's slot of the shape (:func:`~detectors.anomaly.baseline.model.
hour_of_week`), but its volume is uncertain: Tết is a fraction of a Sunday, comes once a year, and
no week of training can learn it. So a silent run that touches a holiday is judged at the volume
the key itself carried in the hours before it (:data:`HOLIDAY_REFERENCE`), against what the
shape expected then (:func:`holiday_scale`: a conservative lower bound of that ratio, at most
:data:`HOLIDAY_MAX_SCALE`, as those hours are often another kind of day, the working eve or the
Sunday before): a day quieter than the slot needs a longer silence, a service that carried its
usual traffic and stopped is still an outage in at most twice its usual time, and a key with no
traffic in those hours proves no silence on a holiday (its collector's heartbeat and the health
probes still speak). :mod:`detectors.anomaly.silence` asks this module; it reads events, never
writes.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from detectors.anomaly.baseline.model import HOUR, VIETNAM_OFFSET, Baseline, Model
from detectors.anomaly.features import ALL_SERVICES, Key, Level, event_indices, traffic_query
from detectors.anomaly.stream.season import VIETNAM
from detectors.base import iso
from soc.es.indices import Indices

#: How far before a holiday silence the key's own traffic is compared with the shape's.
HOLIDAY_REFERENCE = timedelta(hours=6)
#: Standard deviations below the observed count (quasi-Poisson) the holiday volume is taken at.
HOLIDAY_SIGMAS = 2.0
#: The most of the slot a holiday is trusted with: the hours before a silence are often another
#: kind of day (the working eve, the Sunday before the day off).
HOLIDAY_MAX_SCALE = 0.5


def touches_holiday(start: datetime, end: datetime) -> bool:
    """Whether ``[start, end)`` overlaps a public holiday of Vietnam on a working day (local
    dates; a weekend already has its own slots)."""
    day = (start.astimezone(UTC) + VIETNAM_OFFSET).date()
    last = (end.astimezone(UTC) - timedelta(milliseconds=1) + VIETNAM_OFFSET).date()
    while day <= last:
        if day.weekday() < 5 and VIETNAM.rest_day(day):
            return True
        day += timedelta(days=1)
    return False


def holiday_hour(at: datetime) -> bool:
    local = at.astimezone(UTC) + VIETNAM_OFFSET
    return local.weekday() < 5 and VIETNAM.rest_day(local.date())


def scaled_expected(
    model: Model, key: Key, base: Baseline, start: datetime, end: datetime, scale: float
) -> float:
    """:meth:`Model.expected` over ``[start, end)``, its holiday hours times ``scale``."""
    if scale == 1.0:
        return model.expected(key, base, start, end)
    total, at = 0.0, start
    while at < end:
        step_end = min(end, at.replace(minute=0, second=0, microsecond=0) + HOUR)
        part = model.expected(key, base, at, step_end)
        total += part * scale if holiday_hour(at) else part
        at = step_end
    return total


def holiday_scale(observed: int, expected: float, dispersion: float) -> float:
    """The share of the shape's expectation a key carries on a holiday, from ``observed``
    events where the shape ``expected`` before its silence: the count taken
    :data:`HOLIDAY_SIGMAS` quasi-Poisson deviations low, so a few events never vouch for a
    busy day; 0 with nothing to go on, never above :data:`HOLIDAY_MAX_SCALE`."""
    if expected <= 0 or observed <= 0:
        return 0.0
    low = observed - HOLIDAY_SIGMAS * math.sqrt(dispersion * observed)
    return min(HOLIDAY_MAX_SCALE, max(0.0, low / expected))


def holiday_scales(
    es: Elasticsearch,
    indices: Indices,
    model: Model,
    runs: list[tuple[Key, Baseline, datetime, datetime | None]],
) -> list[float]:
    """:func:`holiday_scale` of each silent run: its key's events in the
    :data:`HOLIDAY_REFERENCE` before the run (one search, a filter per run)."""
    if not runs:
        return []
    known = [(i, r) for i, r in enumerate(runs) if r[3] is not None]
    scales = [0.0] * len(runs)
    if not known:
        return scales
    start = min(since for _, (_, _, since, _) in known) - HOLIDAY_REFERENCE
    end = max(since for _, (_, _, since, _) in known)
    filters: dict[str, Any] = {}
    for i, (key, _, since, _) in known:
        must: list[dict[str, Any]] = [
            {"term": {"locality.province.code": key.province}},
            {"range": {"@timestamp": {"gte": iso(since - HOLIDAY_REFERENCE), "lt": iso(since)}}},
        ]
        if key.ward is not None:
            must.append({"term": {"locality.ward.code": key.ward}})
        if key.service != ALL_SERVICES:
            must.append({"term": {"service.name": key.service}})
        filters[str(i)] = {"bool": {"filter": must}}
    answer = es.search(
        index=event_indices(indices, start, end),
        size=0,
        query=traffic_query(start, end, Level.PROVINCE),
        aggs={"runs": {"filters": {"filters": filters}}},
        ignore_unavailable=True,
    )
    buckets = answer["aggregations"]["runs"]["buckets"]
    for i, (key, base, since, _) in known:
        shape = model.expected(key, base, since - HOLIDAY_REFERENCE, since)
        scales[i] = holiday_scale(int(buckets[str(i)]["doc_count"]), shape, base.dispersion)
    return scales
