"""The sync job pushes what the one-stop shop changed, dossier by dossier, within minutes; and the
history holds the health-probe results the probe collector would have written for the fleet."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from collectors.sources.probe import Outcome, Target, to_event
from soc.errors import SimulationError
from soc.localities import Locality, catalogue
from soc.services import Service
from soc.simulate import probes, traffic
from soc.simulate.fleet import Mode
from soc.simulate.formats import to_ecs, to_line
from soc.simulate.models import AppRecord, ProbeRecord
from soc.simulate.service import Plan, records
from tests.simulate.test_scenarios import loaded

MONDAY_9 = datetime.fromisoformat("2026-11-23T09:00:00+07:00")


def _app(recs: Sequence[object], service: Service) -> list[AppRecord]:
    return [r for r in recs if isinstance(r, AppRecord) and r.service is service]


def test_every_dossier_change_is_pushed_within_minutes_under_its_own_id() -> None:
    plan = Plan(seed=3, provinces=("Lai Châu",))
    recs = list(records(plan, MONDAY_9, MONDAY_9 + timedelta(hours=3)))
    changes = [
        r
        for r in _app(recs, Service.ONE_STOP_SHOP)
        if r.event in traffic.DOSSIER_EVENTS and not r.failed
    ]
    pushes: dict[str, list[AppRecord]] = defaultdict(list)
    for r in _app(recs, Service.PORTAL_SYNC):
        if r.event == "dossier_sync":  # the job's own run records carry no dossier
            pushes[r.get("dossier_id")].append(r)
    judged = [c for c in changes if c.at < MONDAY_9 + timedelta(hours=2, minutes=30)]
    assert len(judged) > 20
    for change in judged:
        done = [p for p in pushes[change.get("dossier_id")] if not p.failed]
        assert len(done) == 1, change
        assert done[0].where == change.where
        # the next 5-minute run, a minute at most into it (a failed push: the run after)
        late = timedelta(minutes=6 * (1 + len(pushes[change.get("dossier_id")]) - 1))
        assert change.at < done[0].at <= change.at + late
    # Nothing is pushed that the one-stop shop did not change (this hour or the one before).
    earlier = list(records(plan, MONDAY_9 - timedelta(hours=1), MONDAY_9))
    known = {c.get("dossier_id") for c in [*changes, *_app(earlier, Service.ONE_STOP_SHOP)]}
    assert set(pushes) <= known


def test_pushes_across_an_hour_boundary_are_the_same_whichever_slice_is_asked() -> None:
    plan = Plan(seed=3, provinces=("Lai Châu",), services=(Service.PORTAL_SYNC,))
    ten = MONDAY_9 + timedelta(hours=1)
    alone = list(records(plan, ten, ten + timedelta(hours=1)))
    longer = [r for r in records(plan, MONDAY_9, ten + timedelta(hours=1)) if r.at >= ten]
    assert alone == longer
    assert alone[0].at < ten + timedelta(minutes=6)  # pushes of changes made before ten


def test_the_sync_job_writes_a_summary_every_run_and_a_failure_per_commune_it_missed() -> None:
    """A day of Sơn La: one summary per 5-minute run, within its period (late runs too); now
    and then a commune lost for a single run, about SYNC_RUN_FAILURE of them, never three runs
    in a row here; ~300 records a day for the province, not one per commune per run."""
    day = MONDAY_9 - timedelta(hours=9)
    plan = Plan(seed=1, provinces=("Sơn La",), services=(Service.PORTAL_SYNC,))
    runs = [r for r in _app(list(records(plan, day, day + timedelta(days=1))), Service.PORTAL_SYNC)
            if r.event == "sync_run"]  # fmt: skip
    summaries = [r for r in runs if r.where.ward is None]
    failures = [r for r in runs if r.where.ward is not None]
    assert len(summaries) == 288
    period = traffic.SYNC_PERIOD
    wards = len(catalogue().wards_of("14"))
    for r in summaries:
        assert _due(r) <= r.at < _due(r) + period  # a late run is still within its period
        assert r.get("units_synced") + r.get("units_failed") == wards
    assert [r for r in summaries if r.at - _due(r) > timedelta(minutes=1)]  # late runs exist
    assert (
        0.3 * traffic.SYNC_RUN_FAILURE
        < len(failures) / (288 * wards)
        < 3 * traffic.SYNC_RUN_FAILURE
    )
    assert sum(r.get("units_failed") for r in summaries) == len(failures)
    assert all(r.failed and r.error_code and r.get("run_id") for r in failures)
    lost = {(r.where.ward.code if r.where.ward else "", _due(r)) for r in failures}
    assert not [
        (w, at) for w, at in lost if (w, at - period) in lost and (w, at - 2 * period) in lost
    ]
    assert len(runs) < 400


def _due(rec: AppRecord) -> datetime:
    """The time a run was due, from its id (``sync-<province>-<YYYYmmddTHHMM>Z``)."""
    return datetime.strptime(rec.get("run_id")[-14:], "%Y%m%dT%H%MZ").replace(tzinfo=UTC)


def test_run_records_are_the_same_whichever_slice_is_asked() -> None:
    plan = Plan(seed=1, provinces=("Sơn La",), services=(Service.PORTAL_SYNC,))
    end = MONDAY_9 + timedelta(hours=1)
    alone = _app(list(records(plan, MONDAY_9, end)), Service.PORTAL_SYNC)
    longer = _app(list(records(plan, MONDAY_9 - timedelta(hours=2), end)), Service.PORTAL_SYNC)
    alone = [r for r in alone if r.event == "sync_run"]
    longer = [r for r in longer if r.event == "sync_run" and r.at >= MONDAY_9]
    assert alone == longer
    assert len(alone) >= 12


def test_dossiers_that_failed_in_a_5xx_storm_are_not_pushed() -> None:
    scn = loaded()["oss-5xx-thanhhoa"]
    plan = Plan(seed=2, provinces=(scn.where.province.code,), scenarios=(scn,))
    recs = list(records(plan, scn.start, scn.end))
    failed = {
        r.get("dossier_id")
        for r in _app(recs, Service.ONE_STOP_SHOP)
        if r.event in traffic.DOSSIER_EVENTS and r.failed
    }
    pushed = {r.get("dossier_id") for r in _app(recs, Service.PORTAL_SYNC)}
    assert len(failed) > 10
    assert not failed & pushed


def test_history_has_each_endpoint_reported_hourly_and_a_down_portal_every_minute() -> None:
    scn = loaded()["silent-laichau"]
    plan = Plan(seed=2, provinces=(scn.where.province.code,), scenarios=(scn,), probes=True)
    before = [r for r in records(plan, scn.start - timedelta(hours=1), scn.start)
              if isinstance(r, ProbeRecord)]  # fmt: skip
    targets = probes.targets(catalogue(), scn.where.province.code)
    per_target = Counter(r.target for r in before)
    # Healthy hour: one report per endpoint, give or take a lost check and its recovery.
    assert set(per_target) == {t[2] for t in targets}
    assert Counter(per_target.values()).most_common(1)[0][0] == 1
    assert all(r.up for r in before if per_target[r.target] == 1)
    during = [r for r in records(plan, scn.start, scn.start + timedelta(hours=1))
              if isinstance(r, ProbeRecord)]  # fmt: skip
    assert scn.where.ward is not None
    mine = [r for r in during if r.where.ward == scn.where.ward]
    assert len(mine) == 60
    assert not any(r.up for r in mine)
    assert {r.error for r in mine} == {probes._ERRORS[Mode.DOWN][1]}
    others = Counter(r.target for r in during if r.where.ward != scn.where.ward)
    assert max(others.values()) <= 3


def test_probe_results_have_the_shape_the_probe_collector_writes() -> None:
    cat = catalogue()
    ward = cat.wards_of("12")[0]
    where = Locality(cat.province("12"), ward)
    at = MONDAY_9
    for up, status, error in ((True, 200, None), (False, 503, "HTTP 503, expected 200")):
        rec = ProbeRecord(at, Service.WEB_PORTAL, where, "web-portal-x", "http://fleet.invalid/",
                          up, status, 12.5, error)  # fmt: skip
        target = Target("web-portal-x", "http://fleet.invalid/", Service.WEB_PORTAL, where)
        outcome = Outcome(status, 12.5, None, None, error)
        assert to_ecs(rec) == to_event(target, outcome, at)
    with pytest.raises(SimulationError, match="not a log line"):
        to_line(rec)


def test_probes_are_left_out_unless_asked_for() -> None:
    plan = Plan(seed=2, provinces=("Lai Châu",))
    assert not [r for r in records(plan, MONDAY_9, MONDAY_9 + timedelta(hours=1))
                if isinstance(r, ProbeRecord)]  # fmt: skip
