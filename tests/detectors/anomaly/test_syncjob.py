"""The sync job's own run records find a commune it cannot sync, and a job that stopped, within
two buckets, whether or not anyone changes a dossier. Events are built with the simulator's ECS
renderer, so they have the shapes the collectors write.

World (``T`` = Monday 07:00 in Vietnam, one day of history before it; every job runs every 5
minutes, its summary 20 s into the run, a commune's failure 5 s into it; every collector beats
every 5 minutes):
- Hà Nội (job ``col-h``), communes A..F: A fails every run from ``T+1h`` to ``T+2h``; B fails two
  runs in a row (``T+1h05``, ``T+1h10``), C one (``T+1h30``); D failed one run in six hours in
  training, so three failures in a row (``T+2h``) are not improbable for it; the run of
  ``T+1h40`` starts 4 minutes late.
- province P (collector ``col-p``): the job stops at ``T+1h``; its collector keeps beating.
- province Q (collector ``col-q``): the job and its collector stop together at ``T+1h``.
- provinces R and S (no collector known, as in a backfill): both jobs stop at ``T+1h``; R's
  one-stop shop goes on logging every 5 minutes, S's stops too (a gap in the data, as between a
  backfill and the live traffic that follows it) and comes back at ``T+2h07`` (the live
  traffic), without its job.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from detectors.anomaly import syncjob
from detectors.anomaly.baseline.model import Model
from detectors.anomaly.baseline.persistence import load
from detectors.anomaly.features import Level, extract
from detectors.anomaly.flows import evaluate
from soc.alerts.models import Alert
from soc.config import Settings
from soc.es.indices import Indices
from soc.localities import Locality, Province, Ward, catalogue
from soc.services import Service
from soc.simulate.formats import to_ecs
from soc.simulate.models import AppRecord
from tests.detectors.anomaly.conftest import T, trained
from tests.detectors.anomaly.history import heartbeats

START = T - timedelta(days=1)
END = T + timedelta(hours=4)
Q = timedelta(minutes=15)
RUN = timedelta(minutes=5)
H = timedelta(hours=1)


@dataclass(frozen=True)
class World:
    settings: Settings
    indices: Indices
    model: Model
    model_path: Path
    wards: dict[str, Ward]
    p: Province
    q: Province
    r: Province
    s: Province


def _record(
    prov: Province, ward: Ward | None, at: datetime, run: datetime, collector: str | None
) -> dict[str, Any]:
    run_id = f"sync-{prov.code}-{run:%Y%m%dT%H%MZ}"
    extra: tuple[tuple[str, Any], ...] = (("target", "dvc-quoc-gia"), ("run_id", run_id))
    if ward is None:
        extra += (("units_synced", 6), ("units_failed", 0))
    rec = AppRecord(
        at=at, service=Service.PORTAL_SYNC, where=Locality(prov, ward),
        host=f"portal-sync-{prov.code}-01", event="sync_run",
        result="failure" if ward else "success", level="error" if ward else "info",
        error_code="SYNC_DB_UNREACHABLE" if ward else None,
        msg="connection refused by the commune's one-stop-shop database" if ward else None,
        latency_ms=3000, extra=extra,
    )  # fmt: skip
    event = to_ecs(rec)
    if collector is not None:
        event["soc"]["collector"] = {"id": collector}
    return event


def _dossier(prov: Province, at: datetime) -> dict[str, Any]:
    ward = catalogue().wards_of(prov)[0]
    rec = AppRecord(
        at=at, service=Service.ONE_STOP_SHOP, where=Locality(prov, ward),
        host=f"one-stop-shop-{prov.code}-01", event="dossier_receive", result="success",
        latency_ms=80, extra=(("dossier_id", f"H{prov.code}-{at:%H%M}"),),
    )  # fmt: skip
    return to_ecs(rec)


def _fails(name: str, run: datetime) -> bool:
    if name == "A":
        return T + H <= run < T + 2 * H
    if name == "B":
        return run in (T + H + RUN, T + H + 2 * RUN)
    if name == "C":
        return run == T + H + 6 * RUN
    if name == "D":
        in_training = run < T and (run - START) % timedelta(hours=6) == timedelta(hours=3)
        return in_training or T + 2 * H <= run < T + 2 * H + 3 * RUN
    return False


def _runs(w: dict[str, Ward], *others: Province) -> Iterator[dict[str, Any]]:
    p, q, r, s = others
    hanoi = catalogue().province("01")
    run = START
    while run < END:
        late = timedelta(minutes=4) if run == T + H + 8 * RUN else timedelta(0)
        for name, ward in w.items():
            if _fails(name, run):
                yield _record(hanoi, ward, run + late + timedelta(seconds=5), run, "col-h")
        yield _record(hanoi, None, run + late + timedelta(seconds=20), run, "col-h")
        if run < T + H:  # P's, Q's, R's and S's jobs stop at T+1h
            yield _record(p, None, run + timedelta(seconds=20), run, "col-p")
            yield _record(q, None, run + timedelta(seconds=20), run, "col-q")
            yield _record(r, None, run + timedelta(seconds=20), run, None)
            yield _record(s, None, run + timedelta(seconds=20), run, None)
            yield _dossier(s, run + timedelta(minutes=2))
        if run >= T + 2 * H + RUN:  # S's data comes back (live traffic after a backfill)
            yield _dossier(s, run + timedelta(minutes=2))
        yield _dossier(r, run + timedelta(minutes=2))
        run += RUN
    yield from heartbeats("col-h", "01", START, END)
    yield from heartbeats("col-p", p.code, START, END)
    yield from heartbeats("col-q", q.code, START, T + H)


@pytest.fixture(scope="module")
def world(
    es: Elasticsearch, es_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    w = dict(zip("ABCDEF", catalogue().wards_of("01")[:6], strict=True))
    p, q, r, s = catalogue().provinces[1:5]
    var_dir = tmp_path_factory.mktemp("anomaly-syncjob")
    events = list(_runs(w, p, q, r, s))
    with trained(es, es_url, var_dir, events, T) as (settings, indices, model, path):
        yield World(settings, indices, model, path, w, p, q, r, s)


def _alerts(es: Elasticsearch, world: World, offset: timedelta, rule: str) -> list[Alert]:
    start = T + offset
    found = evaluate(
        es, world.indices, start, start + Q, model=world.model, settings=world.settings
    )
    return [a for a in found if a.rule.id == rule]


def _failing(es: Elasticsearch, world: World, offset: timedelta) -> dict[str, Alert]:
    alerts = _alerts(es, world, offset, "anomaly-sync-failing")
    names = {ward.code: name for name, ward in world.wards.items()}
    return {names[str(a.place.ward_code if a.place else None)]: a for a in alerts}


# ------------------------------------------------------------------ training
def test_training_learns_each_job_and_each_communes_failed_runs(world: World) -> None:
    m = world.model
    hanoi = m.sync_jobs["01"]
    assert (hanoi.runs, hanoi.per_hour, hanoi.missed, hanoi.collectors) == (288, 12, 0, ("col-h",))
    assert m.sync_jobs[world.p.code].collectors == ("col-p",)
    assert m.sync_jobs[world.r.code].collectors == ()
    assert m.sync_failures == {f"01/{world.wards['D'].code}": 4}
    # 4 failed commune runs of 288 runs x 6 communes in Hà Nội, plus P's, Q's, R's and S's.
    assert m.sync_failure_share == pytest.approx(4.5 / (5 * 288 * 6 + 1))
    again = load(world.model_path)  # persisted and read back
    assert (again.sync_jobs, again.sync_failures) == (m.sync_jobs, m.sync_failures)
    assert again.sync_failure_share == m.sync_failure_share


def test_run_records_are_not_traffic(es: Elasticsearch, world: World) -> None:
    for level in Level:
        rows = list(extract(es, world.indices, T + H, T + H + Q, Q, level))
        assert {r.key.service for r in rows} == {"one-stop-shop"}  # R's dossiers only


# ------------------------------------------------------------------ failing communes
def test_three_failed_runs_in_a_row_name_the_commune_in_the_first_bucket(
    es: Elasticsearch, world: World
) -> None:
    found = _failing(es, world, H)
    assert set(found) == {"A"}
    alert = found["A"]
    ex = alert.explanation
    assert ex["features"][0]["observed"] == 3
    share = syncjob.failure_share(world.model, "01", world.wards["A"].code)
    assert ex["features"][0]["p_value"] == pytest.approx(share**3, rel=1e-2)
    assert ex["since"] == "2026-11-16T01:00:05.000Z"
    assert ex["last_ok"] == "2026-11-16T00:55:20.000Z"
    assert ex["last_error"] == "SYNC_DB_UNREACHABLE"
    assert ex["last_run_id"] == "sync-01-20261116T0110Z"
    assert "failed for" in alert.summary
    assert "3 runs in a row" in alert.summary
    assert alert.service == "portal-sync"
    assert alert.group["ward"] == world.wards["A"].code
    assert alert.severity.value in ("high", "critical")


def test_the_streak_goes_on_until_a_run_syncs_the_commune_again(
    es: Elasticsearch, world: World
) -> None:
    later = _failing(es, world, H + 3 * Q)
    assert later["A"].explanation["features"][0]["observed"] == 12
    assert later["A"].explanation["since"] == "2026-11-16T01:00:05.000Z"
    assert "A" not in _failing(es, world, 2 * H)


def test_one_or_two_isolated_failures_never_alert(es: Elasticsearch, world: World) -> None:
    """B failed two runs in a row, C one: below MIN_RUN, whatever the p-value says."""
    for offset in (H, H + Q, H + 2 * Q, H + 3 * Q):
        assert not {"B", "C"} & set(_failing(es, world, offset))


def test_a_commune_that_often_fails_needs_a_longer_streak(es: Elasticsearch, world: World) -> None:
    """D failed one run in 72 in training: three in a row are not improbable enough for it."""
    share = syncjob.failure_share(world.model, "01", world.wards["D"].code)
    alpha = world.settings.anomaly_alpha
    assert share**3 >= alpha > share**4
    assert "D" not in _failing(es, world, 2 * H)


# ------------------------------------------------------------------ stopped jobs
def _stopped(es: Elasticsearch, world: World, offset: timedelta) -> dict[str, Alert]:
    alerts = _alerts(es, world, offset, "anomaly-sync-job-stopped")
    return {str(a.place.province_code if a.place else None): a for a in alerts}


def test_a_job_that_stopped_is_named_in_the_first_bucket(es: Elasticsearch, world: World) -> None:
    found = _stopped(es, world, H)
    assert set(found) == {world.p.code, world.r.code}
    alert = found[world.p.code]
    ex = alert.explanation
    # Last run record at T+0h55:20; by T+1h15, 19 min 40 s: three periods without a run.
    assert ex["features"][0]["observed"] == 3
    assert ex["last_run"] == "2026-11-16T00:55:20.000Z"
    assert ex["period_minutes"] == 5
    assert ex["collectors"] == ["col-p"]
    assert alert.place is not None
    assert alert.place.ward_code is None
    assert "usually runs every 5 min" in alert.summary
    assert alert.severity.value == "critical"  # a whole province
    # and every bucket after it while it stays stopped
    assert _stopped(es, world, 2 * H)[world.p.code].explanation["features"][0]["observed"] == 15


def test_a_late_run_and_a_silent_collector_are_not_a_stopped_job(
    es: Elasticsearch, world: World
) -> None:
    """Hà Nội's run of T+1h40 came 4 minutes late; Q's collector stopped with its job, so the
    silence is the collector's (its heartbeat's business), never the job's."""
    for offset in (H, H + Q, H + 2 * Q, H + 3 * Q, 2 * H):
        assert not {"01", world.q.code} & set(_stopped(es, world, offset))


def test_without_a_known_collector_the_provinces_other_data_must_still_flow(
    es: Elasticsearch, world: World
) -> None:
    """R's one-stop shop goes on, so its data flows and its job stopped; S's data stopped
    altogether (a gap in the feed), so nothing says its job did."""
    alert = _stopped(es, world, H)[world.r.code]
    assert alert.explanation["collectors"] == []
    assert "No collector is known" in alert.summary
    for offset in (H, H + Q, 2 * H):
        assert world.s.code not in _stopped(es, world, offset)


def test_periods_count_from_the_end_of_a_gap_in_the_feed(es: Elasticsearch, world: World) -> None:
    """S's data comes back at T+2h07 after an hour of nothing (the history -> live boundary of
    a demo): in its first bucket the job is not claimed stopped for the hour it was not heard
    (15 periods since its last run, 2 since its data came back); once its data has flowed for
    five periods without a run, it is."""
    assert world.s.code not in _stopped(es, world, 2 * H)
    alert = _stopped(es, world, 2 * H + Q)[world.s.code]
    assert alert.explanation["features"][0]["observed"] == 5
