"""Regular signals that find outages within minutes where traffic is too thin to: a commune
portal's health probe that keeps failing, and dossiers of the one-stop shop that never reach the
national portal. Events are built with the simulator's own ECS renderer, so they have the shapes
the collectors write.

World (Hà Nội, wards A..F, ``T`` = Monday 07:00 in Vietnam, one day of history before it):
- probes: every portal reported healthy each hour; A's portal is down from ``T+1h`` to ``T+3h``
  (a failed check every minute); B's probe results stop at ``T+1h`` (the collector, not the
  portal); C has one lost check at ``T+1h05`` and is fine a minute later.
- dossiers: every ward changes a dossier every 10 minutes, each pushed 3 minutes later; A's
  pushes stop at ``T+1h`` and resume at ``T+3h``; C's dossier of ``T+1h`` is pushed 30 minutes
  late (once, a slow retry).
- a boundary in Tuyên Quang (province 08, after ``T`` only, so training does not see it): three
  wards change a dossier every 10 minutes from ``T+8min``, pushed 3 minutes later, until
  ``T+2h``; then nothing of the province is collected until ``T+2h40`` (a backfilled history
  that ends before live traffic starts, or a collector restart), so the pushes of the dossiers
  changed at ``T+1h58`` are lost with the gap; then the same again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from scipy import stats

from detectors.anomaly import probes, unsynced
from detectors.anomaly.baseline.model import Model
from detectors.anomaly.baseline.persistence import load
from detectors.anomaly.features import Key, Level, extract
from detectors.anomaly.flows import evaluate
from soc.config import Settings
from soc.es.indices import Indices
from soc.localities import Locality, Ward, catalogue
from soc.services import Service
from soc.simulate.formats import to_ecs
from soc.simulate.models import AppRecord, ProbeRecord
from tests.detectors.anomaly.conftest import T, trained

START = T - timedelta(days=1)
END = T + timedelta(hours=4)
Q = timedelta(minutes=15)
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class World:
    settings: Settings
    indices: Indices
    model: Model
    model_path: Path
    wards: dict[str, Ward]


def _probe(ward: Ward, at: datetime, up: bool) -> dict[str, Any]:
    where = Locality(catalogue().province(ward.province_code), ward)
    rec = ProbeRecord(
        at, Service.WEB_PORTAL, where, f"web-portal-{ward.code}", f"http://fleet.invalid/{ward.code}/",
        up, 200 if up else None, 12.0, None if up else "RemoteDisconnected: closed",
    )  # fmt: skip
    return to_ecs(rec)


def _app(ward: Ward, at: datetime, service: Service, event: str, dossier: str) -> dict[str, Any]:
    where = Locality(catalogue().province(ward.province_code), ward)
    rec = AppRecord(
        at=at, service=service, where=where, host=f"{service.value}-ha-noi-01", event=event,
        result="success", latency_ms=80, request_id=f"{dossier}-{event}",
        extra=(("dossier_id", dossier),),
    )  # fmt: skip
    return to_ecs(rec)


def _probes(w: dict[str, Ward]) -> Iterator[dict[str, Any]]:
    hour = START
    while hour < END:
        for name, ward in w.items():
            if name == "B" and hour >= T + timedelta(hours=1):
                continue  # the probe collector stopped: no result at all
            down = name == "A" and T + timedelta(hours=1) <= hour < T + timedelta(hours=3)
            if not down:
                yield _probe(ward, hour + timedelta(minutes=7), True)
        hour += timedelta(hours=1)
    at = T + timedelta(hours=1, seconds=30)
    while at < T + timedelta(hours=3):
        yield _probe(w["A"], at, False)
        at += MINUTE
    yield _probe(w["A"], at, True)  # back up: the first good check is reported at once
    yield _probe(w["C"], T + timedelta(hours=1, minutes=5), False)
    yield _probe(w["C"], T + timedelta(hours=1, minutes=6), True)


def _dossiers(w: dict[str, Ward]) -> Iterator[dict[str, Any]]:
    at, n = START, 0
    while at < END:
        for name, ward in w.items():
            n += 1
            dossier = f"H01.{ward.code}-{n:06d}"
            yield _app(ward, at, Service.ONE_STOP_SHOP, "dossier_receive", dossier)
            push = at + timedelta(minutes=3)
            if name == "A" and T + timedelta(hours=1) <= push < T + timedelta(hours=3):
                continue  # A's sync has stopped
            if name == "C" and at == T + timedelta(hours=1):
                push = at + timedelta(minutes=30)
            yield _app(ward, push, Service.PORTAL_SYNC, "dossier_sync", dossier)
        at += timedelta(minutes=10)


GAP = (T + timedelta(hours=2), T + timedelta(hours=2, minutes=40))


def _boundary(wards: list[Ward]) -> Iterator[dict[str, Any]]:
    at, n = T + timedelta(minutes=8), 0
    while at < END:
        for ward in wards:
            n += 1
            dossier = f"H08.{ward.code}-{n:06d}"
            push = at + timedelta(minutes=3)
            if not GAP[0] <= at < GAP[1]:
                yield _app(ward, at, Service.ONE_STOP_SHOP, "dossier_receive", dossier)
            if not GAP[0] <= push < GAP[1]:
                yield _app(ward, push, Service.PORTAL_SYNC, "dossier_sync", dossier)
        at += timedelta(minutes=10)


@pytest.fixture(scope="module")
def world(
    es: Elasticsearch, es_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    w = dict(zip("ABCDEF", catalogue().wards_of("01")[:6], strict=True))
    var_dir = tmp_path_factory.mktemp("anomaly-probes")
    events = [*_probes(w), *_dossiers(w), *_boundary(catalogue().wards_of("08")[:3])]
    # One 15-minute step per evaluated window, as these tests count (5-minute steps: test_windows).
    with trained(es, es_url, var_dir, events, T, anomaly_bucket_minutes=15) as (
        settings,
        indices,
        model,
        path,
    ):
        yield World(settings, indices, model, path, w)


def _rules(es: Elasticsearch, world: World, offset: timedelta, rule: str) -> list[Any]:
    start = T + offset
    found = evaluate(
        es, world.indices, start, start + Q, model=world.model, settings=world.settings
    )
    return [a for a in found if a.rule.id == rule]


def _portal(world: World, name: str) -> Key:
    return Key(Level.COMMUNE, "01", world.wards[name].code, Service.WEB_PORTAL.value)


# ------------------------------------------------------------------ health probes
def test_training_learns_each_probe_and_the_national_failure_share(world: World) -> None:
    m = world.model
    assert m.probes[_portal(world, "A")] == (24, 0)
    assert m.probes[_portal(world, "C")] == (24, 0)
    assert m.probe_share == pytest.approx(0.5 / (6 * 24 + 1))
    again = load(world.model_path)  # persisted and read back
    assert again.probes == m.probes
    assert again.probe_share == m.probe_share


def test_probe_results_are_not_traffic(es: Elasticsearch, world: World) -> None:
    """A's portal has a probe result every minute in this bucket, and no traffic row at all."""
    one = T + timedelta(hours=1)
    for level in Level:
        rows = list(extract(es, world.indices, one, one + Q, Q, level))
        assert {r.key.service for r in rows} == {"one-stop-shop", "portal-sync"}


def test_a_portal_that_fails_every_check_is_down_within_the_first_bucket(
    es: Elasticsearch, world: World
) -> None:
    alerts = _rules(es, world, timedelta(hours=1), "anomaly-endpoint-down")
    assert [a.place.ward_code for a in alerts] == [world.wards["A"].code]
    alert = alerts[0]
    ex = alert.explanation
    # 15 failed checks in the bucket (from T+1h00:30), each judged against A's own share.
    assert ex["features"][0]["observed"] == 15
    share = probes.share(world.model.probes[_portal(world, "A")], world.model.probe_share)
    assert ex["features"][0]["p_value"] == pytest.approx(share**15, rel=1e-2)
    assert ex["since"] == "2026-11-16T01:00:30.000Z"
    assert ex["last_ok"] == "2026-11-16T00:07:00.000Z"
    assert ex["last_error"] == "RemoteDisconnected: closed"
    assert "failed 15 checks in a row" in alert.summary
    assert alert.service == "web-portal"
    assert alert.severity.value in ("high", "critical")


def test_the_run_goes_on_until_the_portal_answers_again(es: Elasticsearch, world: World) -> None:
    later = _rules(es, world, timedelta(hours=2, minutes=45), "anomaly-endpoint-down")
    assert [a.explanation["features"][0]["observed"] for a in later] == [120]
    assert later[0].explanation["since"] == "2026-11-16T01:00:30.000Z"
    assert _rules(es, world, timedelta(hours=3), "anomaly-endpoint-down") == []


def test_one_lost_check_and_a_probe_that_stopped_reporting_are_not_outages(
    es: Elasticsearch, world: World
) -> None:
    """C lost one check (then answered); B's results stopped coming, which is the collector's
    silence (its heartbeat's business), never the portal's outage."""
    for offset in (timedelta(hours=1), timedelta(hours=2)):
        wards = {a.place.ward_code for a in _rules(es, world, offset, "anomaly-endpoint-down")}
        assert world.wards["B"].code not in wards
        assert world.wards["C"].code not in wards


def test_a_short_run_is_not_enough_even_when_failures_are_rare(
    es: Elasticsearch, world: World
) -> None:
    """Two failures in a row are below MIN_RUN whatever the p-value says."""
    found = probes.find(
        es, world.indices, world.model.probes, world.model.probe_share,
        T + timedelta(hours=1), T + timedelta(hours=1, minutes=2, seconds=1),
        alpha=world.settings.anomaly_alpha,
    )  # fmt: skip
    assert found == []
    found = probes.find(
        es, world.indices, world.model.probes, world.model.probe_share,
        T + timedelta(hours=1), T + timedelta(hours=1, minutes=3, seconds=1),
        alpha=world.settings.anomaly_alpha,
    )  # fmt: skip
    assert [(f.key.ward, f.run) for f in found] == [(world.wards["A"].code, 3)]


# ------------------------------------------------------------------ unsynced dossiers
def test_training_counts_dossiers_left_unsynced(world: World) -> None:
    # The last day before T: 6 wards x 144 dossiers, all pushed within 3 minutes.
    assert (world.model.sync_dossiers, world.model.sync_unsynced) == (6 * 144 - 6 * 2, 0)


def _first_significant(world: World, changed: int) -> int:
    """The fewest unsynced dossiers among ``changed`` that the binomial test calls improbable."""
    share = unsynced.expected_share(world.model.sync_dossiers, world.model.sync_unsynced)
    alpha = world.settings.anomaly_alpha
    return next(
        k
        for k in range(unsynced.MIN_COMMUNE, changed + 1)
        if stats.binom.sf(k - 1, changed, share) < alpha
    )


def test_a_commune_whose_dossiers_stop_syncing_is_named_as_soon_as_they_pile_up(
    es: Elasticsearch, world: World
) -> None:
    a = world.wards["A"].code
    first = None
    for i in range(8):
        offset = timedelta(hours=1) + i * Q
        alerts = _rules(es, world, offset, "anomaly-unsynced-dossiers")
        if [x for x in alerts if x.place.ward_code == a]:
            first = (offset, next(x for x in alerts if x.place.ward_code == a))
            break
    assert first is not None
    offset, alert = first
    end = T + offset + Q
    t = unsynced.tally(es, world.indices, end)[("01", a)]
    # A's dossiers changed from T+1h (pushes due from T+1h03) to the grace before the end.
    changes = (T + timedelta(hours=1) + m * 10 * MINUTE for m in range(12))
    lost = sum(1 for at in changes if at < end - unsynced.GRACE)
    assert (offset, t.unsynced) == (offset, lost)
    assert alert.explanation["features"][0]["observed"] == lost
    assert lost >= _first_significant(world, t.dossiers)
    assert alert.explanation["oldest_unsynced"] == "2026-11-16T01:00:00.000Z"
    assert alert.service == "portal-sync"
    assert "Check the sync job" in alert.summary
    # No other commune is named: C's one late push is not a backlog.
    for i in range(8):
        alerts = _rules(es, world, timedelta(hours=1) + i * Q, "anomaly-unsynced-dossiers")
        assert {x.place.ward_code for x in alerts} <= {a, None}


def test_once_pushes_flow_again_the_old_backlog_raises_nothing_new(
    es: Elasticsearch, world: World
) -> None:
    # Pushes resume at T+3h: from T+3h20 no newly overdue dossier, though the backlog remains.
    assert _rules(es, world, timedelta(hours=3, minutes=30), "anomaly-unsynced-dossiers") == []
    t = unsynced.tally(es, world.indices, T + timedelta(hours=3, minutes=45))
    assert t[("01", world.wards["A"].code)].unsynced > 0


def test_a_collection_gap_or_the_history_live_boundary_leaves_nothing_unsynced(
    es: Elasticsearch, world: World
) -> None:
    # The dossiers changed at T+1h58 had their pushes due in the gap: unknown, not unsynced.
    for minutes in range(120, 200, 15):
        end = T + timedelta(minutes=minutes)
        for (province, _), t in unsynced.tally(es, world.indices, end).items():
            if province == "08":
                assert t.unsynced == 0, (end, t)
    for i in range(6):
        found = _rules(es, world, timedelta(hours=2) + i * Q, "anomaly-unsynced-dossiers")
        assert [a for a in found if a.place and a.place.province_code == "08"] == []
