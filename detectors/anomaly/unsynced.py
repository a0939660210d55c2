"""Dossiers the one-stop shop changed that never reached the national portal, per commune.

Every dossier a provincial one-stop shop receives, processes or returns is pushed to the national
public-service portal by the province's sync job within minutes (``portal-sync`` events carry the
same ``soc.sync.dossier_id``). A sync that stops for some communes shows as nothing at all in the
sync traffic of a quiet commune, but it shows as *records not synced*: dossiers changed in the
one-stop shop more than :data:`GRACE` ago with no successful push since. That is what field
reports name ("records not synced per commune"), and it is counted here exactly, dossier by
dossier, from composite aggregations: first over the dossiers that became overdue in the bucket
(small), and over the last :data:`WINDOW` only for the provinces where one did.

The test: ``k`` unsynced dossiers of ``n`` changed (in the window, past the grace) are judged
against the share of dossiers left unsynced past the grace in training (``q``, shrunk: half a
dossier when none was), a binomial tail below ``anomaly_alpha``, with at least
:data:`MIN_COMMUNE` (a commune) or :data:`MIN_PROVINCE` (a province, all its communes) unsynced.
A finding is raised only in a bucket where another dossier became overdue, so a backlog that is
only waiting to be pushed does not alert every bucket, and the alerts stop once the pushes flow
again. It cannot be faster than the first dossiers: a commune that changes no dossier loses
nothing by not syncing. A dossier whose push was due while nothing at all of its province's sync
job was collected (a collection gap, a restart, the end of a backfilled history before live
traffic) is unknown, not unsynced: it counts neither way. No writes here.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch
from scipy import stats

from detectors.anomaly.features import Key, Level, composite_pages, event_indices
from detectors.base import iso
from soc.es.indices import Indices

OSS_SERVICE = "one-stop-shop"
SYNC_SERVICE = "portal-sync"
DOSSIER_ACTIONS = ("dossier-receive", "dossier-process", "dossier-return")
DOSSIER_FIELD = "soc.sync.dossier_id"
#: How long after a dossier change its push may take before it counts as not synced (the sync
#: job runs every few minutes; a failed push is retried at the next run).
GRACE = timedelta(minutes=20)
#: How far back dossier changes are checked.
WINDOW = timedelta(hours=6)
MIN_COMMUNE = 2
MIN_PROVINCE = 3
PAGE = 20000


@dataclass(frozen=True, slots=True)
class Tally:
    """Dossiers of one commune changed in ``[end - window, end - grace)``; ``unsynced`` of them
    have no successful push after their change; ``oldest``/``newest`` are the unsynced ones'
    change times."""

    dossiers: int = 0
    unsynced: int = 0
    oldest: datetime | None = None
    newest: datetime | None = None

    def add(self, other: Tally) -> Tally:
        def pick(a: datetime | None, b: datetime | None, fn: Any) -> datetime | None:
            return b if a is None else a if b is None else fn(a, b)

        return Tally(
            self.dossiers + other.dossiers,
            self.unsynced + other.unsynced,
            pick(self.oldest, other.oldest, min),
            pick(self.newest, other.newest, max),
        )


@dataclass(frozen=True, slots=True)
class Backlog:
    key: Key
    tally: Tally
    expected_share: float
    p_value: float


def _query(
    start: datetime, changed_until: datetime, end: datetime, provinces: Collection[str]
) -> dict[str, Any]:
    """Successful dossier changes in ``[start, changed_until)`` and pushes in ``[start, end)``."""
    changed = {
        "bool": {
            "filter": [
                {"term": {"service.name": OSS_SERVICE}},
                {"terms": {"event.action": list(DOSSIER_ACTIONS)}},
                {"range": {"@timestamp": {"gte": iso(start), "lt": iso(changed_until)}}},
            ]
        }
    }
    pushed = {
        "bool": {
            "filter": [
                {"term": {"service.name": SYNC_SERVICE}},
                {"range": {"@timestamp": {"gte": iso(start), "lt": iso(end)}}},
            ]
        }
    }
    must: list[dict[str, Any]] = [
        {"term": {"event.outcome": "success"}},
        {"exists": {"field": DOSSIER_FIELD}},
        {"exists": {"field": "locality.ward.code"}},
    ]
    if provinces:
        must.append({"terms": {"locality.province.code": sorted(provinces)}})
    return {"bool": {"filter": must, "should": [changed, pushed], "minimum_should_match": 1}}


def pairs(
    es: Elasticsearch,
    indices: Indices,
    start: datetime,
    changed_until: datetime,
    end: datetime,
    provinces: Collection[str] = (),
) -> dict[tuple[str, str], Tally]:
    """Per ``(province, commune)``: the dossiers changed in ``[start, changed_until)`` and those
    of them without a successful push after their change and before ``end``."""
    sources = [
        {"province": {"terms": {"field": "locality.province.code"}}},
        {"ward": {"terms": {"field": "locality.ward.code"}}},
        {"dossier": {"terms": {"field": DOSSIER_FIELD}}},
        {"service": {"terms": {"field": "service.name"}}},
    ]
    # One row per (dossier, service): the last change and the last push, paired here.
    last: dict[tuple[str, str, str], dict[str, float]] = defaultdict(dict)
    for row in composite_pages(
        es,
        event_indices(indices, start, end),
        _query(start, changed_until, end, provinces),
        sources,
        {"at": {"max": {"field": "@timestamp"}}},
        size=PAGE,
    ):
        k = row["key"]
        last[(k["province"], k["ward"], k["dossier"])][k["service"]] = float(row["at"]["value"])
    heard = _heard(es, indices, start, end, provinces)
    grace_ms = (end - changed_until).total_seconds() * 1000.0  # when each push was due
    out: dict[tuple[str, str], Tally] = defaultdict(Tally)
    for (province, ward, _), seen in last.items():
        changed = seen.get(OSS_SERVICE)
        if changed is None:
            continue  # a push of a dossier changed before the window
        pushed = seen.get(SYNC_SERVICE)
        lost = pushed is None or pushed < changed
        if lost and not _job_heard(heard.get(province, []), changed, grace_ms):
            continue  # nothing collected when its push was due: unknown, not unsynced
        when = datetime.fromtimestamp(changed / 1000, tz=UTC)
        one = Tally(1, 1, when, when) if lost else Tally(1, 0)
        out[(province, ward)] = out[(province, ward)].add(one)
    return dict(out)


def _heard(
    es: Elasticsearch, indices: Indices, start: datetime, end: datetime, provinces: Collection[str]
) -> dict[str, list[float]]:
    """Per province, the minutes (epoch ms, sorted) with any event of its sync job collected.

    A dossier whose push was due while nothing at all of its province's sync job reached soc (a
    collection gap, a restart, the boundary between backfilled history and live traffic) cannot
    be called unsynced: the push may well have happened in the gap.
    """
    must: list[dict[str, Any]] = [
        {"term": {"service.name": SYNC_SERVICE}},
        {"range": {"@timestamp": {"gte": iso(start), "lt": iso(end)}}},
    ]
    if provinces:
        must.append({"terms": {"locality.province.code": sorted(provinces)}})
    sources = [
        {"province": {"terms": {"field": "locality.province.code"}}},
        {"minute": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1m"}}},
    ]
    out: dict[str, list[float]] = defaultdict(list)
    rows = composite_pages(
        es, event_indices(indices, start, end), {"bool": {"filter": must}}, sources, size=PAGE
    )
    for row in rows:
        out[row["key"]["province"]].append(float(row["key"]["minute"]))
    return {province: sorted(minutes) for province, minutes in out.items()}


def _job_heard(minutes: list[float], changed: float, within: float) -> bool:
    """Was the sync job heard in a minute after the change's and within ``within`` ms of it?"""
    after = (changed // 60_000 + 1) * 60_000
    i = bisect_left(minutes, after)
    return i < len(minutes) and minutes[i] <= changed + within


def tally(
    es: Elasticsearch,
    indices: Indices,
    end: datetime,
    *,
    window: timedelta = WINDOW,
    grace: timedelta = GRACE,
    provinces: Collection[str] = (),
) -> dict[tuple[str, str], Tally]:
    """Per ``(province, commune)``: dossiers changed in the window (past the grace) and those
    not synced, as seen at ``end``."""
    return pairs(es, indices, end - window, end - grace, end, provinces)


def training_share(tallies: dict[tuple[str, str], Tally]) -> tuple[int, int]:
    """``(dossiers, unsynced)`` over every commune: what training keeps."""
    return (
        sum(t.dossiers for t in tallies.values()),
        sum(t.unsynced for t in tallies.values()),
    )


def expected_share(dossiers: int, unsynced: int) -> float:
    return (unsynced + 0.5) / (dossiers + 1.0)


def find(
    es: Elasticsearch,
    indices: Indices,
    share: float,
    bucket_start: datetime,
    bucket_end: datetime,
    *,
    alpha: float,
    window: timedelta = WINDOW,
    grace: timedelta = GRACE,
) -> list[Backlog]:
    """Communes and provinces whose unsynced dossiers are improbable, with one newly overdue.

    First the dossiers that became overdue in this bucket (changed in the 15 minutes before the
    grace; a small request): usually none, and then nothing more is asked. Otherwise the whole
    window of the provinces concerned.
    """
    due = pairs(es, indices, bucket_start - grace, bucket_end - grace, bucket_end)
    hot = {province for (province, _), t in due.items() if t.unsynced}
    if not hot:
        return []
    tallies = tally(es, indices, bucket_end, window=window, grace=grace, provinces=hot)
    by_province: dict[str, Tally] = defaultdict(Tally)
    found: list[Backlog] = []

    def judge(key: Key, t: Tally, minimum: int) -> None:
        if t.unsynced < minimum:
            return
        p = float(stats.binom.sf(t.unsynced - 1, t.dossiers, share))
        if p < alpha:
            found.append(Backlog(key, t, share, p))

    for (province, ward), t in tallies.items():
        by_province[province] = by_province[province].add(t)
        if due.get((province, ward), Tally()).unsynced:
            judge(Key(Level.COMMUNE, province, ward, SYNC_SERVICE), t, MIN_COMMUNE)
    for province, t in by_province.items():
        judge(Key(Level.PROVINCE, province, None, SYNC_SERVICE), t, MIN_PROVINCE)
    return found
