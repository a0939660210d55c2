"""The status rule: GREEN/YELLOW/RED per commune and province from open incidents and probes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from elasticsearch import Elasticsearch

from soc.alerts.models import Severity
from soc.auth.models import Role, User
from soc.config import Settings
from soc.es.indices import Indices
from soc.incidents import lifecycle
from soc.incidents import service as incidents
from soc.incidents.grouping import group_alert
from soc.incidents.models import IncidentStatus
from soc.localities import catalogue
from soc.status.service import Board, Colour, board, history, record_changes
from tests.incidents.factory import make_alert, wards

ADMIN = User(name="root", role=Role.ADMIN)
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _board(es: Elasticsearch, indices: Indices, user: User = ADMIN) -> Board:
    es.indices.refresh(index=f"{indices.incidents},{indices.events}*")
    return board(es, indices, user=user, now=NOW, probe_window=900)


def _probe(es: Elasticsearch, indices: Indices, province: str, ward: str | None, up: bool) -> None:
    p = catalogue().province(province)
    locality = {"province": {"code": p.code, "name": p.name}}
    if ward:
        locality["ward"] = {"code": ward, "name": catalogue().ward(ward).name}
    at = NOW - timedelta(minutes=2)
    es.index(
        index=indices.events_for(at),
        document={
            "@timestamp": at.isoformat(),
            "event": {"dataset": "probe.http", "kind": "metric"},
            "soc": {"probe": {"up": up}},
            "locality": locality,
        },
    )


def _colours(result: Board, province: str) -> tuple[Colour, dict[str, Colour]]:
    [prov] = [p for p in result.provinces if p.code == province]
    return prov.status, {c.code: c.status for c in result.communes[province]}


def test_everything_is_green_without_incidents_or_failed_probes(
    es: Elasticsearch, ready: Indices
) -> None:
    result = _board(es, ready)
    assert len(result.provinces) == 34
    assert sum(len(c) for c in result.communes.values()) == 3321
    assert {p.status for p in result.provinces} == {Colour.GREEN}


def test_commune_and_province_colours_follow_the_rule(
    es: Elasticsearch, ready: Indices, settings: Settings
) -> None:
    w_red, w_yellow, w_probe_red, w_probe_yellow, w_green = wards("01", 5)
    group_alert(es, ready, settings, make_alert(ward=w_red, severity=Severity.HIGH))
    group_alert(es, ready, settings, make_alert(ward=w_yellow, severity=Severity.MEDIUM, rule="r2"))
    _probe(es, ready, "01", w_probe_red, up=False)
    _probe(es, ready, "01", w_probe_yellow, up=False)
    _probe(es, ready, "01", w_probe_yellow, up=True)
    _probe(es, ready, "01", w_green, up=True)
    province, communes = _colours(_board(es, ready), "01")
    assert communes[w_red] is Colour.RED
    assert communes[w_yellow] is Colour.YELLOW
    assert communes[w_probe_red] is Colour.RED
    assert communes[w_probe_yellow] is Colour.YELLOW
    assert communes[w_green] is Colour.GREEN
    # Commune problems make the province YELLOW, not RED: no province-wide severe incident.
    assert province is Colour.YELLOW
    assert _colours(_board(es, ready), "79")[0] is Colour.GREEN


def test_a_severe_parent_incident_turns_the_province_and_its_communes_red(
    es: Elasticsearch, ready: Indices, settings: Settings
) -> None:
    communes = wards("01", settings.incident_parent_threshold + 2)
    for i, w in enumerate(communes):
        group_alert(es, ready, settings, make_alert(ward=w, minute=i, severity=Severity.CRITICAL))
    province, colours = _colours(_board(es, ready), "01")
    assert province is Colour.RED
    assert all(colours[w] is Colour.RED for w in communes)


def test_closing_incidents_brings_green_back_and_history_records_each_change(
    es: Elasticsearch, ready: Indices, settings: Settings
) -> None:
    w = wards("01", 1)[0]
    made = group_alert(es, ready, settings, make_alert(ward=w, severity=Severity.HIGH))
    assert record_changes(es, ready, _board(es, ready), NOW) == 2  # commune RED, province YELLOW
    assert record_changes(es, ready, _board(es, ready), NOW) == 0  # nothing changed
    incidents.replace(
        es, ready, lifecycle.transition(made, IncidentStatus.RESOLVED, actor="ana", now=NOW)
    )
    later = NOW + timedelta(minutes=5)
    assert record_changes(es, ready, _board(es, ready), later) == 2
    es.indices.refresh(index=ready.state)
    changes = history(es, ready, user=ADMIN, province="01", size=10)
    assert [(c["code"], c["from"], c["to"]) for c in changes if c["code"] == w] == [
        (w, "RED", "GREEN"),
        (w, "GREEN", "RED"),
    ]
    outsider = User(name="hcm", role=Role.PROVINCIAL_IT, provinces=("79",))
    assert history(es, ready, user=outsider, province="01", size=10) == []


def test_a_provincial_user_sees_only_its_provinces(es: Elasticsearch, ready: Indices) -> None:
    it = User(name="hn", role=Role.PROVINCIAL_IT, provinces=("01",))
    result = _board(es, ready, it)
    assert [p.code for p in result.provinces] == ["01"]
    assert list(result.communes) == ["01"]


def test_a_locality_under_maintenance_is_flagged_on_the_board(
    es: Elasticsearch, ready: Indices
) -> None:
    from soc.incidents import silences
    from soc.incidents.silences import Silence

    w1, w2 = wards("04", 2)
    for ward, start in ((w1, NOW - timedelta(hours=1)), (w2, NOW + timedelta(hours=1))):
        silences.create(es, ready, Silence(province_code="04", ward_code=ward, start=start,
                                           end=start + timedelta(hours=2), reason="nâng cấp",
                                           created_by="it", created=NOW))  # fmt: skip
    found = _board(es, ready)
    communes = {c.code: c for c in found.communes["04"]}
    assert communes[w1].maintenance, "an active window flags its commune"
    assert not communes[w2].maintenance, "a planned window does not, yet"
    assert not next(p for p in found.provinces if p.code == "04").maintenance
