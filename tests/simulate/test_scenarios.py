"""Every scenario kind produces the events it claims, only where and when it claims, and writes
the ground truth for it; bad scenario files are refused with the file and the key."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from soc.errors import ScenarioError
from soc.localities import catalogue
from soc.services import Service
from soc.simulate import scenarios
from soc.simulate.models import AccessRecord, AppRecord, Record
from soc.simulate.service import Plan, records

DEMO = Path(__file__).resolve().parents[2] / "scenarios" / "demo.yaml"
# Monday 00:00 local; the week before held Vietnam Cultural Day (24 November), a holiday.
ORIGIN = datetime(2026, 11, 30, tzinfo=UTC) - timedelta(hours=7)


def loaded() -> dict[str, scenarios.Scenario]:
    return {s.id: s for s in scenarios.load(DEMO, catalogue(), ORIGIN)}


def run(scn: scenarios.Scenario, *, with_scenario: bool = True) -> list[Record]:
    plan = Plan(seed=2, provinces=(scn.where.province.code,),
                scenarios=(scn,) if with_scenario else ())  # fmt: skip
    return list(records(plan, scn.start, scn.end))


def test_demo_file_covers_every_kind_and_labels_each() -> None:
    found = loaded()
    assert {s.kind for s in found.values()} == set(scenarios.Kind)
    labels = [label for s in found.values() for label in s.labels()]
    assert {label.scenario_id for label in labels} == set(found)
    sync = [label for label in labels if label.kind == "sync_stopped"]
    assert len(sync) == 5
    assert all(label.ward_code for label in sync)
    for label in labels:
        assert label.end > label.start
        assert label.province_code


def test_vneid_outage_fails_every_login_of_the_province() -> None:
    scn = loaded()["vneid-outage-hanoi"]
    vneid = [r for r in run(scn) if isinstance(r, AppRecord) and r.service is Service.VNEID]
    assert len(vneid) > 100
    assert all(r.failed and r.error_code == "VNEID-503" for r in vneid)
    baseline = [r for r in run(scn, with_scenario=False) if r.service is Service.VNEID]
    assert sum(r.failed for r in baseline) < 0.1 * len(baseline)


def test_error_storm_fails_about_the_declared_share() -> None:
    scn = loaded()["vneid-errors-danang"]
    vneid = [r for r in run(scn) if r.service is Service.VNEID]
    assert 0.4 < sum(r.failed for r in vneid) / len(vneid) < 0.65


def test_carrier_failure_hits_only_that_carrier() -> None:
    scn = loaded()["otp-mobifone-hcmc"]
    sends = [r for r in run(scn) if isinstance(r, AppRecord) and r.event == "otp_send"]
    by_carrier = Counter((r.get("carrier"), r.failed) for r in sends)
    assert by_carrier[("mobifone", True)] > 10
    assert by_carrier[("mobifone", False)] == 0
    assert by_carrier[("viettel", False)] > 10 * by_carrier[("viettel", True)]


def test_brute_force_hammers_one_account_from_one_address() -> None:
    scn = loaded()["otp-bruteforce-haiphong"]
    hits = [r for r in run(scn) if isinstance(r, AppRecord) and r.user == scn.account]
    assert len(hits) > 200
    assert all(r.error_code == "OTP_INVALID" for r in hits)
    assert len({r.ip for r in hits}) == 1
    assert scn.labels()[0].entity == f"user:{scn.account}"


def test_credential_stuffing_tries_many_accounts_from_few_addresses() -> None:
    scn = loaded()["stuffing-nghean"]
    bad = [r for r in run(scn) if isinstance(r, AppRecord) and r.error_code == "VNEID-401"]
    attack = Counter(r.ip for r in bad).most_common(4)
    assert sum(n for _, n in attack) > 1500
    assert len({r.user for r in bad}) > 1000


def test_5xx_storm_on_the_one_stop_shop() -> None:
    scn = loaded()["oss-5xx-thanhhoa"]
    access = [r for r in run(scn) if isinstance(r, AccessRecord)
              and r.service is Service.ONE_STOP_SHOP]  # fmt: skip
    assert sum(r.status >= 500 for r in access) > 0.6 * len(access) > 50


def _sync(recs: list[Record], event: str) -> list[AppRecord]:
    return [r for r in recs if isinstance(r, AppRecord) and r.event == event]


def test_sync_stops_for_the_listed_communes_only() -> None:
    scn = loaded()["sync-stopped-caobang"]
    stopped = {w.ward.code for w in scn.wards if w.ward}
    sync = _sync(run(scn), "dossier_sync")
    before = _sync(run(scn, with_scenario=False), "dossier_sync")
    assert sync
    assert not [r for r in sync if r.where.ward and r.where.ward.code in stopped]
    assert [r for r in before if r.where.ward and r.where.ward.code in stopped]


def test_a_stopped_sync_fails_its_communes_in_every_run_and_the_summary_counts_them() -> None:
    scn = loaded()["sync-stopped-caobang"]
    stopped = {w.ward.code for w in scn.wards if w.ward}
    runs = _sync(run(scn), "sync_run")
    summaries = [r for r in runs if r.where.ward is None]
    assert len(summaries) == (scn.end - scn.start) / timedelta(minutes=5)
    failed: dict[str, set[str]] = {}
    for r in runs:
        if r.where.ward is not None:
            assert r.failed
            assert r.error_code
            assert r.msg
            assert r.get("run_id")
            failed.setdefault(r.get("run_id"), set()).add(r.where.ward.code)
    wards = len(catalogue().wards_of(scn.where.province))
    for summary in summaries:
        lost = failed[summary.get("run_id")]
        assert stopped <= lost  # every run, every stopped commune
        assert summary.get("units_failed") == len(lost)
        assert summary.get("units_synced") == wards - len(lost)
        assert not summary.failed


def test_a_stopped_job_writes_no_run_record_and_pushes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(
        "scenarios:\n  - {id: job-stopped, kind: sync_stopped, province: Tuyên Quang, "
        "scope: job, start: '+1d02h', duration: 3h}\n"
    )
    (scn,) = scenarios.load(path, catalogue(), ORIGIN)
    assert scn.wards == ()
    assert [(x.province_code, x.ward_code, x.service) for x in scn.labels()] == [
        (scn.where.province.code, None, "portal-sync")
    ]
    assert not [r for r in run(scn) if r.service is Service.PORTAL_SYNC]
    before = [r for r in run(scn, with_scenario=False) if r.service is Service.PORTAL_SYNC]
    assert _sync(before, "sync_run")
    assert _sync(before, "dossier_sync")
    # other services of the province go on as usual
    assert [r for r in run(scn) if r.service is Service.ONE_STOP_SHOP]


def test_silent_commune_sends_nothing_at_all() -> None:
    scn = loaded()["silent-laichau"]
    ward = scn.where.ward
    assert ward is not None
    assert not [r for r in run(scn) if r.where.ward == ward]
    assert len([r for r in run(scn, with_scenario=False) if r.where.ward == ward]) > 20


def test_slow_degradation_creeps_up() -> None:
    scn = loaded()["slow-oss-cantho"]
    apps = [r for r in run(scn) if isinstance(r, AppRecord) and r.service is Service.ONE_STOP_SHOP]
    hour = timedelta(hours=1)
    first = [r.latency_ms or 0 for r in apps if r.at < scn.start + hour / 4]
    last = [r.latency_ms or 0 for r in apps if r.at >= scn.end - hour]
    assert sorted(last)[len(last) // 2] > 5 * sorted(first)[len(first) // 2]


def test_web_attack_brings_traversal_sqli_and_scanners() -> None:
    scn = loaded()["web-attack-hue"]
    scanners = ("sqlmap", "nikto", "nmap", "zgrab")
    attacks = [r for r in run(scn) if isinstance(r, AccessRecord)
               and any(name in r.agent.lower() for name in scanners)]  # fmt: skip
    assert len(attacks) > 300
    assert len({r.ip for r in attacks}) == 1
    assert all(r.where == scn.where for r in attacks)
    text = " ".join(f"{r.path}?{r.query}" for r in attacks).lower()
    assert "../" in text
    assert "union%20select" in text
    assert "%27" not in text


def test_outside_its_window_a_scenario_changes_nothing() -> None:
    scn = loaded()["vneid-outage-hanoi"]
    before = scn.start - timedelta(hours=1)
    plan = Plan(seed=2, provinces=("01",))
    assert list(records(plan, before, scn.start)) == list(
        records(Plan(seed=2, provinces=("01",), scenarios=(scn,)), before, scn.start)
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "scenarios:\n  - {id: a, kind: nope, province: '01', start: '+1h', duration: 1h}\n",
            "scenarios[0].kind",
        ),
        (
            "scenarios:\n  - {id: a, kind: vneid_outage, province: Atlantis, start: '+1h', "
            "duration: 1h}\n",
            "scenarios[0].province: unknown province 'Atlantis'",
        ),
        (
            "scenarios:\n  - {id: a, kind: web_attack, province: '01', start: '+1h', "
            "duration: 1h}\n",
            "scenarios[0].ward",
        ),
        (
            "scenarios:\n  - {id: a, kind: vneid_outage, province: '01', start: '+1h', "
            "duration: soon}\n",
            "scenarios[0].duration",
        ),
        (
            "scenarios:\n  - {id: a, kind: vneid_outage, province: '01', start: '2026-11-20T09:00',"
            " duration: 1h}\n",
            "needs an offset",
        ),
        ("scenarios: [\n", "not valid YAML"),
        (
            "scenarios:\n  - {id: a, kind: vneid_outage, province: '01', service: payment, "
            "start: '+1h', duration: 1h}\n",
            "scenarios[0].service: a vneid_outage scenario is about",
        ),
        (
            "scenarios:\n  - {id: a, kind: sync_stopped, province: '04', scope: job, "
            "ward_count: 3, start: '+1h', duration: 1h}\n",
            "scenarios[0].scope: a stop of the whole job names no wards",
        ),
        (
            "scenarios:\n  - {id: a, kind: vneid_outage, province: '01', scope: job, "
            "start: '+1h', duration: 1h}\n",
            "scenarios[0].scope: only a sync_stopped scenario takes a scope",
        ),
        (
            "scenarios:\n  - {id: a, kind: sync_stopped, province: '04', scope: all, "
            "start: '+1h', duration: 1h}\n",
            "scenarios[0].scope",
        ),
    ],
)
def test_bad_files_are_refused_naming_file_and_key(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ScenarioError) as caught:
        scenarios.load(path, catalogue(), ORIGIN)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)
