"""The role-by-route access matrix, and no data of another province through any route.

Every route is called as admin, analyst, provincial_it of the incident's province (it_right), of
another province (it_wrong) and anonymously, against a fresh incident and alert in Hanoi (01).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest

from detectors.sigma.service import load
from soc.auth import service as auth
from tests.api.conftest import Api
from tests.api.seed import etag, incident

WHO = ("admin", "analyst", "it_right", "it_wrong", "anonymous")
ALL = frozenset({"admin", "analyst", "it_right", "it_wrong"})
STAFF = frozenset({"admin", "analyst"})
ADMIN = frozenset({"admin"})
IT_TOO = frozenset({"admin", "analyst", "it_right", "it_wrong"})


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # {incident}, {alert}, {token} are filled in per case
    roles: frozenset[str]  # roles allowed to call it at all (403 for the others)
    scoped: bool = False  # about one Hanoi item: it_wrong gets 404
    body: Callable[[dict[str, str]], dict[str, Any]] | None = None
    if_match: bool = False
    ok: int = 200
    public: bool = False


MATRIX_RULE = {
    "file_name": "matrix-probe.yml",
    "text": (
        "title: Matrix probe\n"
        "id: 6f0c3a52-2d0e-4f43-9a7e-0b8e3c1d2a11\n"
        "status: test\n"
        "logsource:\n  product: soc\n  service: vneid\n"
        "detection:\n  selection:\n    event.action: login\n    error.code: matrix_probe\n"
        "  condition: selection\n"
        "level: low\n"
    ),
}

ROUTES = [
    Route("GET", "/health", ALL, public=True),
    Route("GET", "/metrics", ALL, public=True),
    Route("GET", "/incidents", ALL),
    Route("GET", "/incidents/metrics", ALL),
    Route("GET", "/incidents/{incident}", ALL, scoped=True),
    Route(
        "POST",
        "/incidents/{incident}/transition",
        IT_TOO,
        scoped=True,
        body=lambda _: {"to": "acknowledged"},
        if_match=True,
    ),
    Route(
        "POST",
        "/incidents/{incident}/comments",
        IT_TOO,
        scoped=True,
        body=lambda _: {"text": "looking"},
        if_match=True,
    ),
    Route(
        "POST",
        "/incidents/{incident}/assign",
        STAFF,
        scoped=True,
        body=lambda _: {"assignee": "lan"},
        if_match=True,
    ),
    Route(
        "POST",
        "/incidents/{incident}/severity",
        STAFF,
        scoped=True,
        body=lambda _: {"severity": "low", "reason": "contained"},
        if_match=True,
    ),
    Route(
        "POST",
        "/incidents/bulk",
        STAFF,
        body=lambda ids: {"ids": [ids["incident"]], "action": "assign", "assignee": "lan"},
    ),
    Route("GET", "/alerts", ALL),
    Route("GET", "/alerts/{alert}", ALL, scoped=True),
    Route("POST", "/alerts/{alert}/acknowledge", STAFF, scoped=True),
    Route("POST", "/alerts/{alert}/false-positive", STAFF, scoped=True),
    Route(
        "POST",
        "/alerts/{alert}/attach",
        STAFF,
        scoped=True,
        body=lambda ids: {"incident_id": ids["other"]},
    ),
    Route("GET", "/localities/provinces", ALL),
    Route("GET", "/localities/provinces/01/wards", ALL),
    Route("GET", "/localities/status", ALL),
    Route("GET", "/localities/status/01", ALL, scoped=True),
    Route("GET", "/localities/status/history", ALL),
    Route("GET", "/rules", STAFF),
    Route("GET", "/rules/{rule}", STAFF),
    Route("POST", "/rules/{rule}/disable", ADMIN),
    Route("POST", "/rules/{rule}/enable", ADMIN),
    Route("POST", "/rules", ADMIN, body=lambda _: MATRIX_RULE, ok=201),
    Route("POST", "/rules/{rule}/test", ADMIN),
    Route("POST", "/rules/{rule}/backtest", ADMIN, body=lambda _: {"hours": 1}),
    Route("GET", "/rules/{rule}/exceptions", STAFF),
    Route(
        "POST",
        "/rules/{rule}/exceptions",
        ADMIN,
        body=lambda _: {
            "field": "source.ip",
            "value": "203.0.113.9",
            "reason": "pentest from the province's vendor",
            "expires_in_hours": 2,
        },
        ok=201,
    ),
    Route("GET", "/auth/me", ALL),
    Route("GET", "/auth/tokens", ALL),
    Route("POST", "/auth/tokens", ALL, body=lambda _: {"label": "ci"}, ok=201),
    Route("DELETE", "/auth/tokens/{token}", ALL),
    Route("POST", "/auth/logout", ALL, ok=204),
]


def _expected(route: Route, who: str) -> int:
    if route.public:
        return 200
    if who == "anonymous":
        return 401
    if who not in route.roles:
        return 403
    if route.scoped and who == "it_wrong":
        return 404
    return route.ok


def _call(api: Api, route: Route, who: str, shared: dict[str, str]) -> httpx2.Response:
    ids = dict(shared)
    if route.method != "GET":  # a write changes its target: give it a fresh one
        made = incident(api, "01")
        ids.update(incident=made.id, alert=made.alert_ids[0])
    if "{token}" in route.path:
        if who == "anonymous":
            ids["token"] = "0" * 16
        else:
            user = api.client.app.state.directory.user(who)  # type: ignore[attr-defined]
            _, info = auth.create_token(api.es, api.indices, user, "to revoke", auth.utcnow())
            ids["token"] = info.id
    headers = api.headers(who)
    if route.if_match:
        headers["If-Match"] = etag(api, ids["incident"])
    path = "/api/v1" + route.path.format(**ids)
    body = route.body(ids) if route.body else None
    return api.client.request(route.method, path, json=body, headers=headers)


@pytest.fixture(scope="module")
def api(shared_api: Api) -> Api:
    return shared_api


@pytest.fixture(scope="module")
def shared(shared_api: Api) -> dict[str, str]:
    made, other = incident(shared_api, "01"), incident(shared_api, "01")
    rule = load(settings=shared_api.settings).runnable[0].id
    return {"incident": made.id, "alert": made.alert_ids[0], "other": other.id, "rule": rule}


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_role_by_route_matrix(shared_api: Api, shared: dict[str, str], route: Route) -> None:
    got = {who: _call(shared_api, route, who, shared).status_code for who in WHO}
    want = {who: _expected(route, who) for who in WHO}
    assert got == want


def test_another_province_leaks_through_no_list_filter_search_count_or_error(api: Api) -> None:
    secret_title = "Hanoi OTP gateway down"
    made = incident(api, "01", title=secret_title)
    incident(api, "79", title="Ho Chi Minh City portal slow")
    api.es.indices.refresh(index=f"{api.indices.incidents},{api.indices.alerts}")
    h = api.headers("it_wrong")
    get = api.client.get
    listed = get("/api/v1/incidents", headers=h).json()
    assert listed["total"] == 1
    assert {i["province_code"] for i in listed["items"]} == {"79"}
    for query in (
        {"province": "01"},
        {"q": "Hanoi OTP"},
        {"ward": made.ward_code},
        {"parent_id": made.id},
    ):
        answer = get("/api/v1/incidents", params=query, headers=h).json()
        assert answer["total"] == 0, query
        assert answer["items"] == [], query
    assert get("/api/v1/alerts", params={"province": "01"}, headers=h).json()["total"] == 0
    assert {r["province_code"] for r in get("/api/v1/incidents/metrics", headers=h).json()} == {
        "79"
    }
    assert [p["code"] for p in get("/api/v1/localities/status", headers=h).json()] == ["79"]
    for path in (f"/api/v1/incidents/{made.id}", f"/api/v1/alerts/{made.alert_ids[0]}"):
        missing = get(path, headers=h)
        assert missing.status_code == 404
        assert secret_title not in missing.text
        assert "01" not in missing.json()["detail"].replace(made.id, "")
    # Bulk on another province's id answers "not found" for it, like a missing id.
    bulk = api.client.post(
        "/api/v1/incidents/bulk",
        headers=api.headers("analyst"),
        json={"ids": [made.id], "action": "assign", "assignee": "x"},
    )
    assert bulk.json()[0]["ok"] is True  # the analyst sees every province
    # The right provincial team sees its own incident.
    mine = get("/api/v1/incidents", params={"q": "Hanoi OTP"}, headers=api.headers("it_right"))
    assert [i["id"] for i in mine.json()["items"]] == [made.id]
