"""The windows each step of the anomaly model judges: a short one and a longer one, both ending at
the step (issue 18: an alert within one bucket plus 60 s, without losing the 15-minute tests'
sensitivity to modest rises).

Every ``anomaly_bucket_minutes`` (the step, 5 by default) the volume, failure-ratio and latency
tests run over the step itself (speed: an outage or a storm is seen at the first step) and over
the last ``anomaly_long_window_minutes`` (15 by default: a modest ratio rise needs that many
events to be significant), under the same ``anomaly_alpha``; both expectations come from the
same hourly baseline (:meth:`Model.expected` integrates the shape over any span). The long
window is not read again: one composite aggregation at the step's granularity over the long
window gives its step-long rows, summed here. Counts, ratios and the slow-request counts of
the latency test sum exactly; the long window's percentiles (context for people only) are the
lowest of its steps'. A key deviating in both windows gives one finding (the short window's,
whose ``since`` is the nearer). No alerting and no I/O besides :func:`rows`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from elasticsearch import Elasticsearch

from detectors.anomaly import scoring
from detectors.anomaly.baseline.model import Model
from detectors.anomaly.features import Features, Key, Level, add_slower, extract
from soc.alerts.anomaly import AnomalyKind
from soc.config import Settings
from soc.errors import ConfigError
from soc.es.indices import Indices

#: The volume tests' kinds: judged only where training saw the hours of the week.
VOLUME_KINDS = (AnomalyKind.VOLUME_SURGE, AnomalyKind.TRAFFIC_DROP)


@dataclass(frozen=True, slots=True)
class Judged:
    """The deviating features of one key over one window ending at the step."""

    row: Features
    deviations: list[scoring.Deviation]
    score: float
    baseline_source: str
    start: datetime


def long_window(settings: Settings, step: timedelta) -> timedelta:
    """The longer window, a whole number of steps (at least one)."""
    long = timedelta(minutes=settings.anomaly_long_window_minutes)
    if long < step or long % step:
        raise ConfigError(
            f"SOC_ANOMALY_LONG_WINDOW_MINUTES: {settings.anomaly_long_window_minutes} must be a "
            f"multiple of the step SOC_ANOMALY_BUCKET_MINUTES ({settings.anomaly_bucket_minutes})"
        )
    return long


def rows(
    es: Elasticsearch, indices: Indices, start: datetime, end: datetime, step: timedelta
) -> list[Features]:
    """Step-long feature rows of ``[start, end)``, both levels: one read for every window."""
    return [r for level in Level for r in extract(es, indices, start, end, step, level)]


def combine(key: Key, parts: list[Features], start: datetime) -> Features:
    """One row for a window from its step-long rows (percentiles: see the module docstring)."""
    counts: dict[str, int] = defaultdict(int)
    for p in parts:
        for name, value in p.counts.items():
            counts[name] += value
    p95s = [p.p95_ms for p in parts if p.p95_ms is not None]
    p50s = [p.p50_ms for p in parts if p.p50_ms is not None]
    return Features(
        key=key,
        bucket=start,
        count=sum(p.count for p in parts),
        counts=dict(counts),
        p50_ms=min(p50s) if p50s else None,
        p95_ms=min(p95s) if p95s else None,
        users=max(p.users for p in parts),
        ips=max(p.ips for p in parts),
        collectors=tuple(sorted({c for p in parts for c in p.collectors})),
        slower=add_slower(parts),
    )


def _judge(
    model: Model, row: Features, start: datetime, end: datetime, settings: Settings
) -> Judged | None:
    base = model.baseline(row.key)
    if base is None:
        return None
    expected = model.expected(row.key, base, start, end)
    found = scoring.judge(
        row,
        base,
        expected,
        alpha=settings.anomaly_alpha,
        min_events=settings.anomaly_min_events,
        min_failures=settings.anomaly_min_failures,
    )
    if not model.covers(start, end):
        # Hours of the week training never saw: their expected volume is a guess (the shape's
        # floor), so no surge or drop is claimed there; ratios and latency still speak.
        found = [d for d in found if d.kind not in VOLUME_KINDS]
    if not found:
        return None
    return Judged(row, found, scoring.score(found, settings.anomaly_alpha), base.source, start)


def judge_step(
    model: Model,
    step_rows: Iterable[Features],
    end: datetime,
    step: timedelta,
    long: timedelta,
    settings: Settings,
) -> list[Judged]:
    """Every key deviating over the step ``[end - step, end)`` or over ``[end - long, end)``."""
    short_start, long_start = end - step, end - long
    by_key: dict[Key, list[Features]] = defaultdict(list)
    for r in step_rows:
        if long_start <= r.bucket < end:
            by_key[r.key].append(r)
    out: list[Judged] = []
    for key, parts in by_key.items():
        last = [p for p in parts if p.bucket == short_start]
        found = _judge(model, last[0], short_start, end, settings) if last else None
        if found is None and long > step:
            whole = combine(key, parts, long_start)
            found = _judge(model, whole, long_start, end, settings)
        if found is not None:
            out.append(found)
    return out
