"""Alerts collapse into incidents per cause and episode; a province-wide cause is one parent."""

from __future__ import annotations

from datetime import timedelta

from elasticsearch import Elasticsearch

from soc.alerts import service as alerts
from soc.alerts.models import AlertStatus
from soc.auth.models import Role, User
from soc.config import Settings
from soc.es.indices import Indices
from soc.incidents import lifecycle
from soc.incidents import service as incidents
from soc.incidents.grouping import group_alert, group_pending
from soc.incidents.models import Incident, IncidentStatus
from soc.incidents.service import IncidentFilter
from tests.incidents.factory import make_alert, wards, write

ADMIN = User(name="root", role=Role.ADMIN)


def _all(
    es: Elasticsearch, indices: Indices, province: str | None = None, ward: str | None = None
) -> list[Incident]:
    es.indices.refresh(index=indices.incidents)
    flt = IncidentFilter(size=500, province=province, ward=ward)
    page = incidents.search(es, indices, flt, user=ADMIN)
    return page.items


def test_alerts_of_one_cause_within_the_episode_make_one_incident(
    es: Elasticsearch, ready: Indices, settings: Settings
) -> None:
    w = wards("01", 1)[0]
    first, second = make_alert(ward=w, minute=0), make_alert(ward=w, minute=6)
    write(es, ready, first, second)
    assert group_pending(es, ready, settings) == 2
    [incident] = _all(es, ready)
    assert incident.alert_count == 2
    assert set(incident.alert_ids) == {first.id, second.id}
    assert incident.ward_code == w
    assert incident.status is IncidentStatus.NEW
    assert incident.event_count == 24
    assert [e.action for e in incident.timeline] == ["open", "alert"]
    for a in (first, second):
        stored = alerts.get(es, ready, a.id, user=None)
        assert stored.incident_id == incident.id
        assert stored.status is AlertStatus.ATTACHED
    # Grouping again finds nothing left to do and changes nothing.
    assert group_pending(es, ready, settings) == 0
    assert _all(es, ready)[0].alert_count == 2


def test_a_new_episode_other_entity_or_other_commune_opens_its_own_incident(
    es: Elasticsearch, ready: Indices, settings: Settings
) -> None:
    w1, w2 = wards("01", 2)
    quiet_min = int(max(settings.incident_recovery_quiet, 2 * 300) // 60)
    write(
        es,
        ready,
        make_alert(ward=w1, minute=0, entity="citizen-7"),
        make_alert(ward=w1, minute=quiet_min + 1, entity="citizen-7"),  # after a recovery
        make_alert(ward=w1, minute=1, entity="citizen-9"),  # another entity
        make_alert(ward=w2, minute=2, entity="citizen-7"),  # another commune (below threshold)
    )
    group_pending(es, ready, settings)
    found = _all(es, ready)
    assert len(found) == 4
    assert all(i.alert_count == 1 and not i.is_parent for i in found)
    same = [i for i in found if i.ward_code == w1 and i.entity_value == "citizen-7"]
    first, second = sorted(same, key=lambda i: i.created)
    assert first.status is IncidentStatus.RESOLVED
    assert first.recovered is not None
    assert (second.episode, second.previous_id) == (2, first.id)


def test_a_flood_across_communes_of_one_province_becomes_one_parent(
    es: Elasticsearch, ready: Indices, settings: Settings
) -> None:
    communes = wards("01", 40)
    flood = [make_alert(ward=w, minute=i % 30) for i, w in enumerate(communes)]
    elsewhere = make_alert(province="79", ward=wards("79", 1)[0], minute=3)
    write(es, ready, *flood, elsewhere)
    assert group_pending(es, ready, settings) == 41
    hanoi = _all(es, ready, province="01")
    parents = [i for i in hanoi if i.is_parent]
    children = [i for i in hanoi if not i.is_parent]
    assert len(parents) == 1, "one cause in one province is one parent incident"
    parent = parents[0]
    assert set(parent.ward_codes) == set(communes)
    assert len(children) == settings.incident_parent_threshold  # not one per commune
    assert all(c.parent_id == parent.id for c in children)
    attached = {alerts.get(es, ready, a.id, user=None).incident_id for a in flood}
    assert attached <= {parent.id, *(c.id for c in children)}
    # The other province's alert is not swallowed by Hanoi's parent.
    [other] = _all(es, ready, province="79")
    assert not other.is_parent
    assert other.parent_id is None
    # Filtering by a commune finds the parent that lists it.
    last = communes[-1]
    assert [i.id for i in _all(es, ready, ward=last)] == [parent.id]


def test_a_resolved_incident_reopens_when_its_failure_goes_on(
    es: Elasticsearch, ready: Indices, settings: Settings
) -> None:
    w = wards("01", 1)[0]
    first = make_alert(ward=w, minute=0)
    incident = group_alert(es, ready, settings, first)
    resolved = incidents.replace(
        es,
        ready,
        lifecycle.transition(
            incident, IncidentStatus.RESOLVED, actor="ana", now=first.created + timedelta(minutes=1)
        ),
    )
    soon = make_alert(ward=w, minute=6)
    again = group_alert(es, ready, settings, soon)
    assert again.id == resolved.id
    assert again.status is IncidentStatus.NEW
    assert again.reopened == 1
    assert again.resolved is None
    assert [e.action for e in again.timeline][-2:] == ["reopen", "alert"]
    # Resolved again, then an alert after a recovery: a fresh incident, the next episode.
    closed = incidents.replace(
        es,
        ready,
        lifecycle.transition(again, IncidentStatus.RESOLVED, actor="ana", now=soon.created),
    )
    late = group_alert(es, ready, settings, make_alert(ward=w, minute=60))
    assert late.id != closed.id
    assert late.reopened == 0
    assert (late.episode, late.previous_id) == (2, closed.id)


def test_a_false_positive_holds_for_its_episode_and_the_next_episode_is_new(
    es: Elasticsearch, ready: Indices, settings: Settings
) -> None:
    w = wards("01", 1)[0]
    incident = group_alert(es, ready, settings, make_alert(ward=w, minute=0))
    incidents.replace(
        es,
        ready,
        lifecycle.transition(
            incident, IncidentStatus.FALSE_POSITIVE, actor="ana", now=incident.created
        ),
    )
    same = group_alert(es, ready, settings, make_alert(ward=w, minute=6))
    assert same.id == incident.id, "same episode: the analyst's verdict holds, quietly"
    assert same.status is IncidentStatus.FALSE_POSITIVE
    assert same.alert_count == 2
    nxt = group_alert(es, ready, settings, make_alert(ward=w, minute=60))
    assert nxt.id != incident.id
    assert nxt.status is IncidentStatus.NEW


def test_regrouping_an_alert_after_a_crash_counts_it_once(
    es: Elasticsearch, ready: Indices, settings: Settings
) -> None:
    w = wards("01", 1)[0]
    a, b = make_alert(ward=w, minute=0), make_alert(ward=w, minute=5)
    write(es, ready, a, b)
    # The grouping ran but stopped before the alerts were marked attached ...
    group_alert(es, ready, settings, a)
    group_alert(es, ready, settings, b)
    # ... so the next run sees both alerts again.
    assert group_pending(es, ready, settings) == 2
    [incident] = _all(es, ready)
    assert incident.alert_count == 2


def test_the_stored_summary_follows_the_newest_alert_of_the_incident(
    es: Elasticsearch, ready: Indices, settings: Settings
) -> None:
    w = wards("01", 1)[0]
    first = make_alert(ward=w, minute=0)
    worse = make_alert(ward=w, minute=6, title="VNeID login failures, 40 a minute")
    late = make_alert(ward=w, minute=3, title="VNeID login failures, an older window")
    for alert in (first, worse, late):  # the older window arrives last (a delayed detector)
        group_alert(es, ready, settings, alert)
    [incident] = _all(es, ready)
    assert incident.alert_count == 3
    assert incident.title == worse.title
    assert incident.summary == worse.summary
    found = incidents.search_rows(es, ready, IncidentFilter(), user=ADMIN)[0]
    assert [r["summary"] for r in found] == [worse.summary]
