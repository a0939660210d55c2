"""The learnt normal: a seasonal baseline per (locality, service), fitted from hourly features.

Traffic of a key is modelled as ``level * shape[service][hour of week]``: the *shape* (168 factors,
mean 1) is pooled over every province for a service, so it is well estimated from one week; the
*level* (events per hour) is the key's own. Ratios (5xx, 401/403, failures, OTP failures) keep
their training totals, shrunk towards the service's national rate so a commune with few events
does not get an extreme baseline. Latency keeps the 95th and 99th percentiles of the period (for
people) and the key's *slow rung* with the shares of its events that reached it and each rung
above it (for the test; see
:mod:`detectors.anomaly.baseline.latency`).

Cold start: a key the model has not seen (or has seen for less than a day) borrows the median
level of its province's communes for that service, and the province's ratios and latency (see
:meth:`Model.baseline`). This module is pure computation: no Elasticsearch, no files.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from detectors.anomaly.baseline import latency
from detectors.anomaly.features import ALL_SERVICES, RATIOS, Clumps, Features, Key, Level
from detectors.anomaly.stream.season import VIETNAM

#: Bumped whenever the persisted shape or the meaning of a field changes.
MODEL_VERSION = 5
HOURS_OF_WEEK = 168
HOUR = timedelta(hours=1)
VIETNAM_OFFSET = timedelta(minutes=VIETNAM.utc_offset_minutes)
#: Pseudo-events of the national rate added to a key's ratio totals (empirical Bayes shrinkage).
PRIOR_WEIGHT = 20.0
#: A key needs this many hours of history before its own level is trusted over its peers'.
MIN_HISTORY_HOURS = 24
PEERS = "province peers (new or young locality)"
#: Floor of a shape factor: an hour that was empty in training is quiet, not impossible.
SHAPE_FLOOR = 0.02
#: Standard errors by which the Pearson dispersion must fall below a key's counted clump size
#: before that size is rejected (its client field names a gateway or a server, not a person):
#: see :func:`_dispersion`.
CLUMP_Z = 3.0


#: ``(key, hour, events)``: one hour of one key's traffic.
Hourly = tuple[Key, datetime, int]


def hour_of_week(when: datetime) -> int:
    """0 = Monday 00:00 UTC. Vietnam has no daylight saving, so UTC hours map 1:1 to local.

    A public holiday of Vietnam (Tết, 30 April, 2 September, ... from the ``holidays`` package,
    in local time) on a working day is a Sunday: its hours take the slot of the same local hour
    on a Sunday, so a holiday's quiet is the season, not an outage of the whole country.
    """
    utc = when.astimezone(UTC)
    local = utc + VIETNAM_OFFSET
    if local.weekday() < 5 and VIETNAM.rest_day(local.date()):
        utc += timedelta(days=6 - local.weekday())
    return utc.weekday() * 24 + utc.hour


@dataclass(frozen=True, slots=True)
class Baseline:
    """What is normal for one key, at a shape factor of 1."""

    level: float
    hours: int
    ratios: dict[str, float]
    p95_ms: float | None = None
    p99_ms: float | None = None
    collectors: tuple[str, ...] = ()
    source: str = "own history"
    #: Variance over mean of the key's counts (quasi-Poisson), at least its clump size: see
    #: :func:`_dispersion`.
    dispersion: float = 1.0
    #: Slow for this key: events at or above ``slow_ms`` (a rung of the latency ladder; ``None``:
    #: latency never seen); ``slow_shares``: the shares of its training events at or above that
    #: rung and each rung above it.
    slow_ms: float | None = None
    slow_shares: tuple[float, ...] = ()
    #: The shrunk shares of its training events at or above every rung of the ladder (empty: a
    #: model saved before they were kept, which counts the tail only), for the shift test.
    rung_shares: tuple[float, ...] = ()
    #: Mean events per clump (one client within an hour) in training; 1 when unknown (a model
    #: saved before clumps were counted).
    clump: float = 1.0


@dataclass(frozen=True, slots=True)
class SyncJob:
    """What training saw of one province's sync job (see :mod:`detectors.anomaly.syncjob`):
    its run records, its usual runs per hour (the median hour), the runs missing from the hours
    it ran in, and the collectors that carried its records."""

    runs: int
    per_hour: float
    missed: int
    collectors: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Model:
    version: int
    trained_at: datetime
    start: datetime
    end: datetime
    shapes: dict[str, tuple[float, ...]]
    baselines: dict[Key, Baseline]
    priors: dict[str, dict[str, float]]
    peers: dict[str, float] = field(default_factory=dict)
    #: Health probes: ``(reports, failed reports)`` per probed endpoint, and the national share
    #: of failed reports (see :mod:`detectors.anomaly.probes`).
    probes: dict[Key, tuple[int, int]] = field(default_factory=dict)
    probe_share: float = 0.0
    #: Dossiers changed in the one-stop shop and, of them, left unsynced past the grace in
    #: training (see :mod:`detectors.anomaly.unsynced`).
    sync_dossiers: int = 0
    sync_unsynced: int = 0
    #: The sync jobs' run records per province, each commune's failed runs (``province/ward``)
    #: and the national share of failed commune runs (see :mod:`detectors.anomaly.syncjob`).
    sync_jobs: dict[str, SyncJob] = field(default_factory=dict)
    sync_failures: dict[str, int] = field(default_factory=dict)
    sync_failure_share: float = 0.0
    #: The hours of the week training had data for (168 flags); empty: every hour (a model saved
    #: before this was recorded). A young installation (or a demo with 3 days of history under a
    #: 7-day window) has never seen most of the week: its shape there is a guess (the floor).
    covered: tuple[bool, ...] = ()

    def covers(self, start: datetime, end: datetime) -> bool:
        """Whether training saw every hour of the week ``[start, end)`` touches."""
        if not self.covered:
            return True
        at = start.replace(minute=0, second=0, microsecond=0)
        while at < end:
            if not self.covered[hour_of_week(at)]:
                return False
            at += HOUR
        return True

    def factor(self, service: str, when: datetime) -> float:
        shape = self.shapes.get(service)
        return shape[hour_of_week(when)] if shape else 1.0

    def expected(self, key: Key, base: Baseline, start: datetime, end: datetime) -> float:
        """Expected events of ``key`` in ``[start, end)``, integrating the shape hour by hour."""
        total, at = 0.0, start
        while at < end:
            step_end = min(end, at.replace(minute=0, second=0, microsecond=0) + HOUR)
            total += base.level * self.factor(key.service, at) * ((step_end - at) / HOUR)
            at = step_end
        return total

    def baseline(self, key: Key) -> Baseline | None:
        """The key's own baseline, or its province peers' for a new or young key."""
        own = self.baselines.get(key)
        if own is not None and own.hours >= MIN_HISTORY_HOURS:
            return own
        province = self.baselines.get(Key(Level.PROVINCE, key.province, None, key.service))
        peer_level = self.peers.get(f"{key.province}/{key.service}")
        if key.level is Level.PROVINCE or province is None or peer_level is None:
            return own
        return Baseline(
            level=peer_level,
            hours=own.hours if own else 0,
            ratios=province.ratios,
            p95_ms=province.p95_ms,
            p99_ms=province.p99_ms,
            slow_ms=province.slow_ms,
            slow_shares=province.slow_shares,
            rung_shares=province.rung_shares,
            collectors=own.collectors if own else province.collectors,
            source=PEERS,
        )


def _shapes(hourly: list[Hourly], start: datetime, end: datetime) -> dict[str, tuple[float, ...]]:
    """Per service, the mean hour-of-week profile of its province-level traffic, mean 1."""
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0] * HOURS_OF_WEEK)
    seen = [0] * HOURS_OF_WEEK
    at = start
    while at < end:
        seen[hour_of_week(at)] += 1
        at += HOUR
    for key, hour, count in hourly:
        if key.level is Level.PROVINCE:
            sums[key.service][hour_of_week(hour)] += count
    shapes: dict[str, tuple[float, ...]] = {}
    for service, values in sums.items():
        per = [v / seen[h] if seen[h] else 0.0 for h, v in enumerate(values)]
        present = [v for h, v in enumerate(per) if seen[h]]
        mean = sum(present) / len(present) if present else 0.0
        if mean <= 0:
            continue
        shapes[service] = tuple(max(SHAPE_FLOOR, v / mean) for v in _fill_days(per, seen))
    return shapes


def _fill_days(per: list[float], seen: list[int]) -> list[float]:
    """Hours of the week training never covered take the same hour of the covered days.

    With less than a week of history, Saturday 01:00 is then as quiet as the nights seen,
    not as busy as the average hour.
    """
    filled = list(per)
    for h in range(HOURS_OF_WEEK):
        if not seen[h]:
            same = [per[d * 24 + h % 24] for d in range(7) if seen[d * 24 + h % 24]]
            filled[h] = sum(same) / len(same) if same else sum(per) / max(1, sum(map(bool, seen)))
    return filled


def fit(
    hourly: Iterable[Hourly],
    totals: Iterable[Features],
    start: datetime,
    end: datetime,
    clumps: Clumps | None = None,
) -> Model:
    """Fit the model on ``[start, end)``: hourly counts per key (both levels) give the shape, the
    levels and the dispersion; one totals row per key gives ratios, latency and collectors;
    ``clumps`` (``[events, clumps]`` per key, from :func:`~detectors.anomaly.features.
    hourly_counts`) the clump sizes."""
    clumps = clumps or {}
    hourly = list(hourly)
    shapes = _shapes(hourly, start, end)
    by_key: dict[Key, list[tuple[datetime, int]]] = defaultdict(list)
    for key, hour, count in hourly:
        by_key[key].append((hour, count))
    rows = {row.key: row for row in totals}
    priors = _priors(rows.values())
    slow_priors = latency.national(rows.values())
    rows.update(_all_services(by_key, rows))
    exposures = {service: _exposures(shape, start, end) for service, shape in shapes.items()}
    flat = _exposures(None, start, end)
    baselines = {
        key: _baseline(
            row,
            by_key.get(key, []),
            shapes.get(key.service),
            exposures.get(key.service, flat),
            (start, end),
            priors.get(key.service, {}),
            slow_priors.get(key.service),
            clump_size(*clumps.get(key, (0, 0))),
        )
        for key, row in rows.items()
    }
    return Model(
        version=MODEL_VERSION,
        trained_at=_now_ms(),
        start=start,
        end=end,
        shapes=shapes,
        baselines=baselines,
        priors=priors,
        peers=_peers(baselines),
        covered=_covered(hourly, start, end),
    )


def _covered(hourly: list[Hourly], start: datetime, end: datetime) -> tuple[bool, ...]:
    """The hours of the week ``[first hour with traffic, end)`` spans."""
    covered = [False] * HOURS_OF_WEEK
    at = max(start, min((hour for _, hour, _ in hourly), default=end))
    while at < end:
        covered[hour_of_week(at)] = True
        at += HOUR
    return tuple(covered)


def _now_ms() -> datetime:
    # Persisted times have millisecond precision; a loaded model must equal the saved one.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _all_services(
    by_key: dict[Key, list[tuple[datetime, int]]], rows: dict[Key, Features]
) -> dict[Key, Features]:
    """Totals of the all-services keys (counted hourly only), with their services' collectors."""
    collectors: dict[tuple[Level, str, str | None], set[str]] = defaultdict(set)
    for key, row in rows.items():
        collectors[(key.level, key.province, key.ward)].update(row.collectors)
    return {
        key: Features(
            key,
            min(h for h, _ in hours),
            sum(c for _, c in hours),
            collectors=tuple(sorted(collectors[(key.level, key.province, key.ward)])),
        )
        for key, hours in by_key.items()
        if key.service == ALL_SERVICES and hours
    }


def _priors(rows: Iterable[Features]) -> dict[str, dict[str, float]]:
    """National rate of every ratio per service, from province-level totals."""
    totals: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for row in rows:
        if row.key.level is Level.PROVINCE:
            for name in RATIOS:
                num, den = row.ratio(name)
                totals[row.key.service][name][0] += num
                totals[row.key.service][name][1] += den
    return {
        service: {name: (n + 0.5) / (d + 1.0) for name, (n, d) in ratios.items()}
        for service, ratios in totals.items()
    }


def _exposures(
    shape: tuple[float, ...] | None, start: datetime, end: datetime
) -> tuple[float, float]:
    """Sum of the shape over the training hours (what a level of 1 event/hour would have sent),
    and the sum of its inverse."""
    total, inverse, at = 0.0, 0.0, start
    while at < end:
        factor = shape[hour_of_week(at)] if shape else 1.0
        total += factor
        inverse += 1.0 / factor
        at += HOUR
    return total, inverse


def _baseline(
    row: Features,
    hours: list[tuple[datetime, int]],
    shape: tuple[float, ...] | None,
    exposures: tuple[float, float],
    span: tuple[datetime, datetime],
    prior: dict[str, float],
    slow_prior: tuple[float, ...] | None = None,
    clump: float = 1.0,
) -> Baseline:
    # The level counts the whole training period, hours without events included, so a sparse
    # key gets a low level rather than the rate of the few hours it was seen in.
    start, end = span
    exposure, inverse = exposures
    level = row.count / exposure if exposure > 0 else 0.0
    ratios: dict[str, float] = {}
    for name in RATIOS:
        num, den = row.ratio(name)
        ratios[name] = (num + PRIOR_WEIGHT * prior.get(name, 0.01)) / (den + PRIOR_WEIGHT)
    first = min((h for h, _ in hours), default=start)
    shares = latency.rung_shares(row.slower, slow_prior, PRIOR_WEIGHT)
    slow = latency.slow_rung(shares)
    return Baseline(
        level=level,
        hours=int((end - first) / HOUR),
        ratios=ratios,
        p95_ms=row.p95_ms,
        p99_ms=row.p99_ms,
        slow_ms=slow[0] if slow else None,
        slow_shares=slow[1] if slow else (),
        rung_shares=shares if slow else (),
        collectors=tuple(sorted(row.collectors)),
        dispersion=_dispersion(
            hours, shape, level, row.count, int((end - start) / HOUR), inverse, clump
        ),
        clump=clump,
    )


def clump_size(events: int, clumps: int) -> float:
    """Mean events per clump, at least 1 (1 with nothing counted)."""
    return max(1.0, events / clumps) if clumps > 0 else 1.0


def _dispersion(
    hours: list[tuple[datetime, int]],
    shape: tuple[float, ...] | None,
    level: float,
    total: int,
    span_hours: int,
    inverse_exposure: float = 0.0,
    clump: float = 1.0,
) -> float:
    """The key's dispersion: its Pearson statistic, or its clump size if larger and believable.

    Real traffic comes in clumps (a page load is several requests, a VNeID login three events
    within seconds), so silences and surges are likelier than Poisson says; tests divide counts
    by the dispersion (quasi-Poisson). If clumps of mean size ``k`` (second moment ``k2``)
    arrive as a Poisson process, ``e`` expected events are ``e / k`` expected clumps: no event
    at all has probability ``exp(-e / k)``, and the counts' variance is ``e * k2 / k >= e * k``.
    So the key's clump size (counted in training, :func:`clump_size`) is a floor of the true
    dispersion and exactly the divisor a silence needs; this Pearson estimate also sees
    variation of the clumps' rate, but from sparse hourly counts it is noisy and mostly low
    (a commune whose VNeID logins are three events each measured 0.93, a 0.5 % silence called
    p = 9e-8). So the larger of the two is kept, floored at 1.

    Unless the counts prove the clump size wrong: a client field that names a proxy, an
    office's gateway or a calling server gathers many people's independent events, and its
    "clumps" do not make the counts any more variable. Clumps of size ``k`` arriving at ``l = e /
    k`` an hour make each hour's Pearson term ``r = (c - e)^2 / e`` average ``k`` with variance
    ``k^2 (1 / l + 2)``: a sparse series' terms are so spread that its Pearson statistic proves
    nothing (a few hours of 3 or 6 events carry it), a busy one's are tight. A clump size whose
    Pearson statistic falls :data:`CLUMP_Z` standard errors below it is rejected, and the largest
    clump size the counts do not reject is kept. ``inverse_exposure`` is the sum of the inverse
    shape over the training hours (so that the sum of ``1 / l`` is ``k / level`` times it).
    """
    if level <= 0 or span_hours < 2:
        return 1.0
    # sum over all hours of (c - e)^2 / e, with c = 0 in the hours without a row.
    squares = sum(
        count**2 / (level * (shape[hour_of_week(hour)] if shape else 1.0)) for hour, count in hours
    )
    pearson = (squares - total) / (span_hours - 1)
    if clump <= pearson:
        return max(1.0, pearson)

    def rejected(k: float) -> bool:
        error = math.sqrt(k / level * inverse_exposure + 2 * span_hours) / span_hours
        return pearson < k * (1 - CLUMP_Z * error)

    if not rejected(clump):
        return clump
    low, high = max(1.0, pearson), clump
    for _ in range(30):
        middle = (low + high) / 2
        low, high = (low, middle) if rejected(middle) else (middle, high)
    return low


def _peers(baselines: dict[Key, Baseline]) -> dict[str, float]:
    """Median commune level per (province, service): a new commune's starting point."""
    levels: dict[str, list[float]] = defaultdict(list)
    for key, base in baselines.items():
        if key.level is Level.COMMUNE and base.hours >= MIN_HISTORY_HOURS:
            levels[f"{key.province}/{key.service}"].append(base.level)
    return {k: statistics.median(v) for k, v in levels.items()}
