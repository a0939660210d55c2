"""Every lifecycle transition through the API, allowed and refused, and optimistic concurrency."""

from __future__ import annotations

import threading

import httpx2
import pytest

from soc.incidents.models import TRANSITIONS, IncidentStatus
from tests.api.conftest import Api
from tests.api.seed import etag, incident

S = IncidentStatus
#: How to bring a new incident into each state.
PATHS = {
    S.NEW: [],
    S.ACKNOWLEDGED: [S.ACKNOWLEDGED],
    S.INVESTIGATING: [S.ACKNOWLEDGED, S.INVESTIGATING],
    S.RESOLVED: [S.INVESTIGATING, S.RESOLVED],
    S.FALSE_POSITIVE: [S.FALSE_POSITIVE],
}


@pytest.fixture(scope="module")
def api(shared_api: Api) -> Api:
    """One app for the module: every test makes its own incidents, so they stay independent."""
    return shared_api


def _move(
    api: Api, incident_id: str, to: S, who: str = "analyst", reason: str = ""
) -> httpx2.Response:
    return api.client.post(
        f"/api/v1/incidents/{incident_id}/transition",
        json={"to": to.value, "reason": reason},
        headers=api.headers(who, **{"If-Match": etag(api, incident_id)}),
    )


def test_every_transition_is_allowed_or_refused_as_the_lifecycle_says(api: Api) -> None:
    for start in S:
        for target in S:
            made = incident(api)
            for step in PATHS[start]:
                assert _move(api, made.id, step).status_code == 200
            answer = _move(api, made.id, target, reason="because")
            allowed = target in TRANSITIONS[start]
            assert answer.status_code == (200 if allowed else 409), (start, target, answer.text)
            after = api.client.get(f"/api/v1/incidents/{made.id}", headers=api.headers("admin"))
            body = after.json()
            if allowed:
                assert body["status"] == target.value
                last = body["timeline"][-1]
                assert last["actor"] == "analyst"
                assert last["action"] in ("transition", "reopen")
            else:
                assert body["status"] == start.value, "a refused transition changes nothing"
                problem = answer.json()
                assert answer.headers["content-type"].startswith("application/problem+json")
                assert start.value in problem["detail"]
                assert target.value in problem["detail"]


def test_acknowledge_and_resolve_set_the_sla_clocks_and_feed_mtta_mttr(api: Api) -> None:
    made = incident(api, "04")  # the only incident of Cao Bằng in the API tests
    assert _move(api, made.id, S.ACKNOWLEDGED).status_code == 200
    assert _move(api, made.id, S.RESOLVED).status_code == 200
    body = api.client.get(f"/api/v1/incidents/{made.id}", headers=api.headers("admin")).json()
    assert body["tta_seconds"] > 0
    assert body["ttr_seconds"] >= body["tta_seconds"]
    assert body["ack_due"] > body["created"]
    assert body["resolve_due"] > body["ack_due"]
    api.es.indices.refresh(index=api.indices.incidents)
    rows = api.client.get("/api/v1/incidents/metrics", headers=api.headers("admin")).json()
    [cao_bang] = [r for r in rows if r["province_code"] == "04"]
    assert cao_bang["mtta_seconds"] == pytest.approx(body["tta_seconds"])
    assert cao_bang["mttr_seconds"] == pytest.approx(body["ttr_seconds"])


def test_two_writers_with_the_same_etag_one_wins_the_other_gets_412(api: Api) -> None:
    made = incident(api)
    tag = etag(api, made.id)
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def write(who: str, to: S) -> None:
        barrier.wait()
        answer = api.client.post(
            f"/api/v1/incidents/{made.id}/transition",
            json={"to": to.value},
            headers=api.headers(who, **{"If-Match": tag}),
        )
        codes.append(answer.status_code)

    threads = [
        threading.Thread(target=write, args=("analyst", S.ACKNOWLEDGED)),
        threading.Thread(target=write, args=("admin", S.FALSE_POSITIVE)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200, 412]
    body = api.client.get(f"/api/v1/incidents/{made.id}", headers=api.headers("admin")).json()
    assert len([e for e in body["timeline"] if e["action"] == "transition"]) == 1


def test_a_stale_etag_is_refused_and_a_missing_one_is_required(api: Api) -> None:
    made = incident(api)
    old = etag(api, made.id)
    assert _move(api, made.id, S.ACKNOWLEDGED).status_code == 200
    stale = api.client.post(
        f"/api/v1/incidents/{made.id}/comments",
        json={"text": "on it"},
        headers=api.headers("analyst", **{"If-Match": old}),
    )
    assert stale.status_code == 412
    assert stale.json()["title"] == "Precondition failed"
    missing = api.client.post(
        f"/api/v1/incidents/{made.id}/comments",
        json={"text": "on it"},
        headers=api.headers("analyst"),
    )
    assert missing.status_code == 428


def test_assign_comment_and_severity_with_reason_are_on_the_timeline_and_audited(api: Api) -> None:
    made = incident(api)
    base = f"/api/v1/incidents/{made.id}"
    for path, body in (
        ("assign", {"assignee": "lan"}),
        ("comments", {"text": "<b>x</b>"}),
        ("severity", {"severity": "critical", "reason": "citizens blocked"}),
    ):
        answer = api.client.post(
            f"{base}/{path}",
            json=body,
            headers=api.headers("analyst", **{"If-Match": etag(api, made.id)}),
        )
        assert answer.status_code == 200, answer.text
    body = api.client.get(base, headers=api.headers("admin")).json()
    assert body["assignee"] == "lan"
    assert body["severity"] == "critical"
    assert (
        body["comments"][0]["text"] == "<b>x</b>"
    )  # stored as given; escaping is the viewer's job
    actions = [e["action"] for e in body["timeline"]]
    assert actions[-3:] == ["assign", "comment", "severity"]
    assert body["timeline"][-1]["detail"]["reason"] == "citizens blocked"
    no_reason = api.client.post(
        f"{base}/severity",
        json={"severity": "low", "reason": ""},
        headers=api.headers("analyst", **{"If-Match": etag(api, made.id)}),
    )
    assert no_reason.status_code == 422
    api.es.indices.refresh(index=api.indices.audit)
    audited = api.es.search(index=api.indices.audit, query={"term": {"target.id": made.id}})
    assert {h["_source"]["action"] for h in audited["hits"]["hits"]} == {
        "incident.assign",
        "incident.comment",
        "incident.severity",
    }


def test_bulk_transition_reports_each_incident(api: Api) -> None:
    a, b = incident(api), incident(api)
    assert _move(api, b.id, S.FALSE_POSITIVE).status_code == 200
    answer = api.client.post(
        "/api/v1/incidents/bulk",
        json={"ids": [a.id, b.id, "nope"], "action": "transition", "to": "acknowledged"},
        headers=api.headers("analyst"),
    )
    assert answer.status_code == 200, answer.text
    assert [(r["id"], r["status"]) for r in answer.json()] == [
        (a.id, 200),
        (b.id, 409),
        ("nope", 404),
    ]


def test_a_list_item_is_the_incident_without_its_history(api: Api) -> None:
    made = incident(api, "11")  # the only incident of Điện Biên in the API tests
    h = api.headers("admin")
    assert _move(api, made.id, S.ACKNOWLEDGED).status_code == 200
    full = api.client.get(f"/api/v1/incidents/{made.id}", headers=h).json()
    api.es.indices.refresh(index=api.indices.incidents)
    listed = api.client.get("/api/v1/incidents", params={"province": "11"}, headers=h).json()
    assert listed["total"] == 1
    history = {"alert_ids", "timeline", "comments"}
    assert full["timeline"], "the full incident has its history"
    (item,) = listed["items"]
    want = {k: v for k, v in full.items() if k not in history}
    assert {k: (item.get(k), v) for k, v in want.items() if item.get(k) != v} == {}
    assert item.keys() == want.keys()
