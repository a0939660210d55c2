"""Silence: expected traffic that stopped, told apart from a silent collector and a quiet hour.

How long a silence must last before it is an outage depends on the series: the chance of no
event at all over a run of time is ``exp(-expected / dispersion)`` (quasi-Poisson: traffic
comes in clumps), where ``expected`` integrates the key's seasonal baseline over the run. So the
silence a series needs is the run, ending now, over which it expects ``dispersion * ln(1/alpha)``
events (:func:`needed_silence`): one bucket for a busy portal, several hours for a commune that
expects three events an hour, and more than the look-back (never alerting) in a quiet night
hour or for a series too small to ever prove anything.

For every key the model knows, the last traffic event within the look-back
(``anomaly_silence_lookback_minutes``, long enough for quiet series to qualify) comes from one
composite aggregation (max ``@timestamp`` per province, commune and service, the province-only
events in a ``null`` commune); province and all-services keys are derived from it here. A key
with no event in the scored bucket whose silent run is improbable is silent.

Nothing stored from anyone, anywhere, is a gap in collection (a demo's history -> live boundary,
an ingestion outage), not evidence that every key fell silent: the expected events of a silent run
leave out the collection gaps it spans (:func:`collection_gaps`).

Before a silence is called an outage, the collectors that carried the key's traffic in training
are asked for any sign of life in the bucket (a ``collector.heartbeat`` event or any event bearing
their ``soc.collector.id``). If none of them was heard, the cause is the collector, not the
service, and a single collector-silence finding is raised instead.

A public holiday takes a Sunday's slot of the shape, but its volume is uncertain: a silent run
that touches one is judged at the volume the key itself carried before it
(:mod:`detectors.anomaly.silence_holiday`).
This module does not write.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from detectors.anomaly.baseline.model import (
    HOUR,
    MIN_HISTORY_HOURS,
    Baseline,
    Model,
)
from detectors.anomaly.features import (
    ALL_SERVICES,
    Key,
    Level,
    composite_pages,
    event_indices,
    traffic_query,
)
from detectors.anomaly.silence_holiday import (
    holiday_hour,
    holiday_scales,
    scaled_expected,
    touches_holiday,
)
from detectors.base import iso
from soc.es.indices import Indices


@dataclass(frozen=True, slots=True)
class Silence:
    """A key that expected traffic and got none since ``since``.

    ``needed`` is how long this series must be silent, ending at the scored bucket, before its
    silence is improbable; ``rate`` its expected events per hour at the scored bucket;
    ``since_known`` is False when no event was seen within the look-back (silent at least that
    long).
    """

    key: Key
    since: datetime
    expected: float
    p_value: float
    collectors: tuple[str, ...]
    collector_silent: bool
    needed: timedelta = timedelta(0)
    rate: float = 0.0
    since_known: bool = True
    #: On a holiday, the share of the shape's expectation the key carried before its silence
    #: (:func:`~detectors.anomaly.silence_holiday.holiday_scale`); ``expected``, ``needed`` and
    #: ``rate`` already include it.
    holiday_scale: float = 1.0


@dataclass(frozen=True, slots=True)
class CollectorSilence:
    """A collector that sent nothing (not even a heartbeat) while its keys expected traffic."""

    collector: str
    keys: tuple[Key, ...]
    since: datetime
    expected: float


#: One page holds a day's keys (~26,000 at the default scale) without reserving the count pages'
#: 60,000 slots (with a sub-aggregation each) on a small heap.
LAST_SEEN_PAGE_SIZE = 30000
#: ``(province, commune or None, service or "*")``: a key without its level (no commune means
#: the province level), cheap to hash for the tens of thousands of keys of every bucket.
Spot = tuple[str, str | None, str]


def last_seen(
    es: Elasticsearch, indices: Indices, start: datetime, end: datetime
) -> dict[Key, datetime]:
    """The time of the last traffic event in ``[start, end)`` of every key, at both levels and
    for all services too."""
    return {
        Key(Level.COMMUNE if ward else Level.PROVINCE, province, ward, service): _utc(ms)
        for (province, ward, service), ms in _latest(es, indices, start, end).items()
    }


def _latest(
    es: Elasticsearch, indices: Indices, start: datetime, end: datetime
) -> dict[Spot, float]:
    """Epoch milliseconds of the last traffic event of every key (see :data:`Spot`).

    One composite aggregation in one big page: the commune source keeps province-only events in
    a ``null`` commune, and the province and all-services keys are their commune rows' maximum
    (every page of a composite re-reads the matching events, so one page over a day of traffic
    is far cheaper than one query per level in small pages).
    """
    sources: list[dict[str, Any]] = [
        {"province": {"terms": {"field": "locality.province.code"}}},
        {"ward": {"terms": {"field": "locality.ward.code", "missing_bucket": True}}},
        {"service": {"terms": {"field": "service.name"}}},
    ]
    seen: dict[Spot, float] = {}
    pages = composite_pages(
        es,
        event_indices(indices, start, end),
        traffic_query(start, end, Level.PROVINCE),
        sources,
        {"last": {"max": {"field": "@timestamp"}}},
        size=LAST_SEEN_PAGE_SIZE,
    )
    for row in pages:
        k = row["key"]
        province, ward, service = k["province"], k["ward"], k["service"]
        when = float(row["last"]["value"])
        spots = [(province, None, service), (province, None, ALL_SERVICES)]
        if ward is not None:
            spots += [(province, ward, service), (province, ward, ALL_SERVICES)]
        for spot in spots:
            if seen.get(spot, 0.0) < when:
                seen[spot] = when
    return seen


def _utc(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def needed_silence(
    model: Model,
    key: Key,
    base: Baseline,
    end: datetime,
    alpha: float,
    limit: timedelta,
    scale: float = 1.0,
) -> timedelta | None:
    """How long ``key`` must be silent, up to ``end``, before its silence is improbable.

    The run ending at ``end`` over which the baseline expects ``dispersion * ln(1/alpha)``
    events, walked back hour by hour (the rate follows the hour of the week); ``None`` when even
    ``limit`` is not enough (a quiet hour, or a series too small to prove a silence).
    ``scale`` multiplies the baseline in a holiday's hours (its
    :func:`~detectors.anomaly.silence_holiday.holiday_scale`).
    """
    target = base.dispersion * math.log(1 / alpha)
    total, at, floor_ = 0.0, end, end - limit
    while at > floor_:
        step_start = max(floor_, _hour_before(at))
        rate = base.level * model.factor(key.service, step_start)
        if scale != 1.0 and holiday_hour(step_start):
            rate *= scale
        part = rate * ((at - step_start) / HOUR)
        if rate > 0 and total + part >= target:
            return end - at + (target - total) / rate * HOUR
        total += part
        at = step_start
    return None


def _hour_before(at: datetime) -> datetime:
    top = at.replace(minute=0, second=0, microsecond=0)
    return top - HOUR if top == at else top


def heard_collectors(
    es: Elasticsearch, indices: Indices, start: datetime, end: datetime
) -> set[str]:
    """Collectors that sent anything at all (heartbeat or event) in ``[start, end)``."""
    query = {"range": {"@timestamp": {"gte": iso(start), "lt": iso(end)}}}
    sources = [{"collector": {"terms": {"field": "soc.collector.id"}}}]
    pages = composite_pages(es, event_indices(indices, start, end), query, sources)
    return {str(row["key"]["collector"]) for row in pages}


#: The step at which a collection gap is looked for: a step without one traffic event from
#: anyone, anywhere (the history -> live boundary of a demo, an ingestion outage).
GAP_STEP = timedelta(minutes=5)


def collection_gaps(
    es: Elasticsearch, indices: Indices, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """The spans of ``[start, end)`` in which no traffic event at all was stored, merged.

    Nothing from any province is a gap in collection, not 26,000 simultaneous outages: no
    silence is evidence there (one date histogram of the national traffic, :data:`GAP_STEP`).
    """
    minutes = int(GAP_STEP.total_seconds() // 60)
    histogram = {
        "field": "@timestamp",
        "fixed_interval": f"{minutes}m",
        "min_doc_count": 0,
        "extended_bounds": {"min": iso(start), "max": iso(end - timedelta(milliseconds=1))},
    }
    answer = es.search(
        index=event_indices(indices, start, end),
        size=0,
        query=traffic_query(start, end, Level.PROVINCE),
        aggs={"steps": {"date_histogram": histogram}},
        ignore_unavailable=True,
        allow_no_indices=True,
    )
    buckets = answer.get("aggregations", {}).get("steps", {}).get("buckets", [])
    gaps: list[tuple[datetime, datetime]] = []
    for b in buckets:
        if b["doc_count"]:
            continue
        lo = max(start, _utc(float(b["key"])))
        hi = min(end, lo + GAP_STEP)
        if gaps and gaps[-1][1] >= lo:
            gaps[-1] = (gaps[-1][0], hi)
        else:
            gaps.append((lo, hi))
    return gaps


def _outside_gaps(
    model: Model,
    key: Key,
    base: Baseline,
    since: datetime,
    end: datetime,
    scale: float,
    gaps: list[tuple[datetime, datetime]],
) -> float:
    """The run's expected events, less those of the collection gaps it spans."""
    expected = scaled_expected(model, key, base, since, end, scale)
    for lo, hi in gaps:
        if lo < end and hi > since:
            expected -= scaled_expected(model, key, base, max(lo, since), min(hi, end), scale)
    return max(0.0, expected)


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
    """Silent keys whose silence is improbable, split into outages and collector silences.

    ``lookback`` bounds the silent run a key is judged on: a quiet series whose
    :func:`needed_silence` is longer never alerts.
    """
    since_floor = bucket_end - lookback
    seen = _latest(es, indices, since_floor, bucket_end)
    gaps = collection_gaps(es, indices, since_floor, bucket_end)
    threshold = math.log(1 / alpha)
    start_ms = bucket_start.timestamp() * 1000
    # The busiest hour of each service bounds any run's expectation: most silent keys are far
    # too small to matter, and need no hour-by-hour integration.
    peak = {service: max(shape) for service, shape in model.shapes.items()}
    outages: list[Silence] = []
    # (key, baseline, since, last event): silent runs that touch a holiday, judged below.
    on_holiday: list[tuple[Key, Baseline, datetime, datetime | None]] = []
    for key, base in model.baselines.items():
        last_ms = seen.get((key.province, key.ward, key.service))
        if last_ms is not None and last_ms >= start_ms:
            continue
        # Only a key's own history can say its traffic stopped: a new commune borrowing its
        # peers' level was never seen sending, so its silence proves nothing.
        if base.level <= 0 or base.hours < MIN_HISTORY_HOURS:
            continue
        # The run starts just after the last event (or at the look-back's edge if none was seen).
        last = _utc(last_ms) if last_ms is not None else None
        since = last + timedelta(milliseconds=1) if last is not None else since_floor
        bound = base.level * peak.get(key.service, 1.0) * ((bucket_end - since) / HOUR)
        if bound / base.dispersion <= threshold:
            continue
        expected = _outside_gaps(model, key, base, since, bucket_end, 1.0, gaps)
        # quasi-Poisson: clumps make silence likelier. Same as p < alpha, without exp() underflow.
        if expected / base.dispersion <= threshold:
            continue
        if touches_holiday(since, bucket_end):
            on_holiday.append((key, base, since, last))
            continue
        outages.append(
            _silence(model, key, base, since, last, (bucket_start, bucket_end), alpha, expected)
        )
    scales = holiday_scales(es, indices, model, on_holiday)
    for (key, base, since, last), scale in zip(on_holiday, scales, strict=True):
        expected = _outside_gaps(model, key, base, since, bucket_end, scale, gaps)
        if expected / base.dispersion > threshold:
            outages.append(
                _silence(
                    model,
                    key,
                    base,
                    since,
                    last,
                    (bucket_start, bucket_end),
                    alpha,
                    expected,
                    scale,
                )
            )
    heard = heard_collectors(es, indices, bucket_start, bucket_end) if outages else set()
    outages = [
        replace(s, collector_silent=bool(s.collectors) and not (set(s.collectors) & heard))
        for s in outages
    ]
    return [s for s in outages if not s.collector_silent], _by_collector(outages)


def _silence(
    model: Model,
    key: Key,
    base: Baseline,
    since: datetime,
    last: datetime | None,
    bucket: tuple[datetime, datetime],
    alpha: float,
    expected: float,
    scale: float = 1.0,
) -> Silence:
    """The finding of a silent run judged improbable (its collectors not asked yet): ``expected``
    its events outside collection gaps."""
    bucket_start, bucket_end = bucket
    needed = needed_silence(model, key, base, bucket_end, alpha, bucket_end - since, scale)
    return Silence(
        key,
        since,
        expected,
        math.exp(-expected / base.dispersion),
        base.collectors,
        False,
        needed or bucket_end - since,
        base.level
        * model.factor(key.service, bucket_start)
        * (scale if holiday_hour(bucket_start) else 1.0),
        last is not None,
        scale,
    )


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
