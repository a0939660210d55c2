"""The role-by-route access matrix over the app's own route table, and no data of another
province through any list.

:data:`ROWS` has one row per method and path the app serves (JSON API and console pages alike):
:func:`test_every_route_of_the_app_has_a_row` reads the route table, so a new route cannot be
added without saying who may call it. Each row is then called as admin, analyst, provincial IT of
the item's province (it_right, Hà Nội) and of another (it_wrong, Hồ Chí Minh City) and anonymously,
reads and writes, against a fresh Hà Nội incident and alert for every write. API callers send
their bearer token; console callers their session cookie and its CSRF token.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from detectors.sigma.service import load
from soc.auth import service as auth
from soc.config import PROJECT_ROOT
from soc.incidents import silences
from soc.incidents.silences import Silence
from tests.api.conftest import PASSWORD, USERS, Api
from tests.api.seed import etag, incident

WHO = ("admin", "analyst", "it_right", "it_wrong", "anonymous")
ALL = frozenset(USERS)
STAFF = frozenset({"admin", "analyst"})
ADMIN = frozenset({"admin"})

Ids = dict[str, str]


@dataclass(frozen=True)
class Row:
    """Who may call one route, and what a call sends."""

    roles: frozenset[str]  # signed-in roles allowed at all (403 for the others)
    scoped: bool = False  # about one Hà Nội item: it_wrong gets 404, as for a missing one
    ok: int = 200
    public: bool = False  # no sign-in needed: everyone gets ``ok``
    body: Callable[[Ids], dict[str, Any]] | None = None  # JSON (API) or form fields (console)
    if_match: bool = False
    fill: dict[str, str] = field(default_factory=dict)  # literal path parameters

    @staticmethod
    def console_page(path: str) -> bool:
        return not path.startswith("/api/") and not path.startswith("/docs")


def _rule_text(name: str, uuid: str) -> str:
    return (
        f"title: {name}\nid: {uuid}\nstatus: test\n"
        "logsource:\n  product: soc\n  service: vneid\n"
        f"detection:\n  selection:\n    event.action: login\n    error.code: {name}\n"
        "  condition: selection\nlevel: low\n"
    )


API_RULE = {
    "file_name": "matrix-probe.yml",
    "text": _rule_text("matrix_probe", "6f0c3a52-2d0e-4f43-9a7e-0b8e3c1d2a11"),
}
CONSOLE_RULE = {
    "file_name": "matrix-console.yml",
    "text": _rule_text("matrix_console", "0b7e43c1-5a6f-4d1e-8c2b-7e9f10a2b3c4"),
}
ROUTES_YAML = (PROJECT_ROOT / "config" / "routes.example.yaml").read_text(encoding="utf-8")
V1 = "/api/v1"


def _window() -> dict[str, Any]:
    """A maintenance window in Hà Nội, from now for an hour."""
    now = auth.utcnow()
    return {"province": "01", "service": "web-portal", "start": now.isoformat(),
            "end": (now + timedelta(hours=1)).isoformat(), "reason": "planned work"}  # fmt: skip


ROWS: dict[tuple[str, str], Row] = {
    # --- public: documentation, health, metrics, signing in
    ("GET", f"{V1}/openapi.json"): Row(ALL, public=True),
    ("GET", f"{V1}/docs"): Row(ALL, public=True),
    ("GET", f"{V1}/docs/init.js"): Row(ALL, public=True),
    ("GET", f"{V1}/health"): Row(ALL, public=True),
    ("GET", f"{V1}/metrics"): Row(ALL, public=True),
    ("POST", f"{V1}/auth/login"): Row(
        ALL, public=True, body=lambda _: {"username": "analyst", "password": PASSWORD}
    ),
    # --- the API: who am I, tokens
    ("POST", f"{V1}/auth/logout"): Row(ALL, ok=204),
    ("GET", f"{V1}/auth/me"): Row(ALL),
    ("GET", f"{V1}/auth/tokens"): Row(ALL),
    ("POST", f"{V1}/auth/tokens"): Row(ALL, ok=201, body=lambda _: {"label": "ci"}),
    ("DELETE", f"{V1}/auth/tokens/{{token_id}}"): Row(ALL),
    # --- alerts
    ("GET", f"{V1}/alerts"): Row(ALL),
    ("GET", f"{V1}/alerts/{{alert_id}}"): Row(ALL, scoped=True),
    ("POST", f"{V1}/alerts/{{alert_id}}/acknowledge"): Row(STAFF, scoped=True),
    ("POST", f"{V1}/alerts/{{alert_id}}/false-positive"): Row(STAFF, scoped=True),
    ("POST", f"{V1}/alerts/{{alert_id}}/attach"): Row(
        STAFF, scoped=True, body=lambda ids: {"incident_id": ids["other"]}
    ),
    # --- incidents
    ("GET", f"{V1}/incidents"): Row(ALL),
    ("GET", f"{V1}/incidents/metrics"): Row(ALL),
    ("GET", f"{V1}/incidents/{{incident_id}}"): Row(ALL, scoped=True),
    ("POST", f"{V1}/incidents/{{incident_id}}/transition"): Row(
        ALL, scoped=True, if_match=True, body=lambda _: {"to": "acknowledged"}
    ),
    ("POST", f"{V1}/incidents/{{incident_id}}/comments"): Row(
        ALL, scoped=True, if_match=True, body=lambda _: {"text": "looking"}
    ),
    ("POST", f"{V1}/incidents/{{incident_id}}/assign"): Row(
        STAFF, scoped=True, if_match=True, body=lambda _: {"assignee": "lan"}
    ),
    ("POST", f"{V1}/incidents/{{incident_id}}/severity"): Row(
        STAFF,
        scoped=True,
        if_match=True,
        body=lambda _: {"severity": "low", "reason": "contained"},
    ),
    ("POST", f"{V1}/incidents/bulk"): Row(
        STAFF, body=lambda ids: {"ids": [ids["incident"]], "action": "assign", "assignee": "lan"}
    ),
    # --- maintenance windows (issue 19): any role, within its provinces
    ("GET", f"{V1}/silences"): Row(ALL),
    ("POST", f"{V1}/silences"): Row(ALL, scoped=True, ok=201, body=lambda _: _window()),
    ("DELETE", f"{V1}/silences/{{silence_id}}"): Row(ALL, scoped=True),
    # --- emails: the outbox is scoped (every province an email names must be the caller's)
    ("GET", f"{V1}/notify/outbox"): Row(ALL),
    ("GET", f"{V1}/notify/routes"): Row(ADMIN),
    ("POST", f"{V1}/notify/routes/check"): Row(ADMIN, body=lambda _: {"yaml": ROUTES_YAML}),
    ("PUT", f"{V1}/notify/routes"): Row(ADMIN, body=lambda _: {"yaml": ROUTES_YAML}),
    # --- localities and status
    ("GET", f"{V1}/localities/provinces"): Row(ALL),
    ("GET", f"{V1}/localities/provinces/{{code}}/wards"): Row(ALL, fill={"code": "01"}),
    ("GET", f"{V1}/localities/status"): Row(ALL),
    ("GET", f"{V1}/localities/status/history"): Row(ALL),
    ("GET", f"{V1}/localities/status/{{code}}"): Row(ALL, scoped=True, fill={"code": "01"}),
    # --- rules (national: staff read, admins change)
    ("GET", f"{V1}/rules"): Row(STAFF),
    ("GET", f"{V1}/rules/{{key}}"): Row(STAFF),
    ("POST", f"{V1}/rules/{{key}}/disable"): Row(ADMIN),
    ("POST", f"{V1}/rules/{{key}}/enable"): Row(ADMIN),
    ("POST", f"{V1}/rules"): Row(ADMIN, ok=201, body=lambda _: API_RULE),
    ("POST", f"{V1}/rules/{{key}}/test"): Row(ADMIN),
    ("POST", f"{V1}/rules/{{key}}/backtest"): Row(ADMIN, body=lambda _: {"hours": 1}),
    ("GET", f"{V1}/rules/{{key}}/exceptions"): Row(STAFF),
    ("POST", f"{V1}/rules/{{key}}/exceptions"): Row(
        ADMIN,
        ok=201,
        body=lambda _: {
            "field": "source.ip",
            "value": "203.0.113.9",
            "reason": "pentest from the province's vendor",
            "expires_in_hours": 2,
        },
    ),
    # --- console pages (a missing session is a redirect to the login page)
    ("GET", "/login"): Row(ALL, public=True),
    ("POST", "/login"): Row(ALL, public=True, ok=303),
    ("POST", "/logout"): Row(ALL, ok=303),
    ("GET", "/lang/{code}"): Row(ALL, public=True, ok=303, fill={"code": "en"}),
    ("GET", "/tz/{code}"): Row(ALL, public=True, ok=303, fill={"code": "utc"}),
    ("GET", "/"): Row(ALL),
    ("GET", "/provinces/{code}"): Row(ALL, scoped=True, fill={"code": "01"}),
    ("GET", "/durations"): Row(ALL),
    ("GET", "/alerts"): Row(ALL),
    ("GET", "/alerts/feed.json"): Row(ALL),
    ("POST", "/alerts/bulk"): Row(
        STAFF, ok=303, body=lambda ids: {"ids": ids["alert"], "action": "acknowledge"}
    ),
    ("GET", "/incidents"): Row(ALL),
    ("POST", "/incidents/bulk"): Row(
        STAFF,
        ok=303,
        body=lambda ids: {"ids": ids["incident"], "action": "assign", "assignee": "lan"},
    ),
    ("GET", "/incidents/{incident_id}"): Row(ALL, scoped=True),
    ("POST", "/incidents/{incident_id}/{action}"): Row(
        ALL,
        scoped=True,
        ok=303,
        fill={"action": "comment"},
        body=lambda ids: {"etag": ids["etag"], "text": "looking"},
    ),
    ("GET", "/rules"): Row(ADMIN),
    ("POST", "/rules/upload"): Row(ADMIN, ok=303, body=lambda _: CONSOLE_RULE),
    ("POST", "/rules/{rule_id}/exception"): Row(
        ADMIN,
        ok=303,
        body=lambda _: {
            "field": "source.ip",
            "value": "203.0.113.9",
            "reason": "pentest",
            "days": "1",
        },
    ),
    ("POST", "/rules/{rule_id}/threshold"): Row(
        ADMIN,  # a correlation rule (thresholds are counts of one)
        fill={"rule_id": "eef20f99-8bf8-4d31-9776-95641223716b"},
        body=lambda _: {"province": "01", "count": "5", "action": "preview"},
    ),
    ("POST", "/rules/{rule_id}/{action}"): Row(ADMIN, ok=303, fill={"action": "enable"}),
    ("GET", "/outbox"): Row(ADMIN),
}


def app_routes(api: Api) -> set[tuple[str, str]]:
    """Every (method, path) the app serves; HEAD is GET's twin, ``/static`` is files."""
    found = set()
    app = api.client.app
    assert isinstance(app, FastAPI)  # TestClient types it as any ASGI app
    for route in iter_route_contexts(app.routes):
        for method in route.methods or ():
            if method != "HEAD" and route.path:
                found.add((method, route.path))
    return found


def test_every_route_of_the_app_has_a_row(api: Api) -> None:
    served = app_routes(api)
    assert served - set(ROWS) == set(), "routes without a row in the access matrix"
    assert set(ROWS) - served == set(), "rows for routes the app no longer serves"


@dataclass(frozen=True)
class Session:
    cookie: str
    csrf: str


def _sign_in(api: Api, who: str) -> Session:
    answer = api.client.post("/api/v1/auth/login", json={"username": who, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    api.client.cookies.clear()
    secret = re.search(r"soc_session=([^;]+)", answer.headers["set-cookie"])
    assert secret is not None
    return Session(f"soc_session={secret.group(1)}", answer.json()["csrf_token"])


def _expected(row: Row, path: str, who: str) -> int:
    if row.public:
        return row.ok
    if who == "anonymous":
        return 303 if Row.console_page(path) else 401
    if who not in row.roles:
        return 403
    if row.scoped and who == "it_wrong":
        return 404
    return row.ok


def _ids(api: Api, method: str, path: str, who: str, shared: Ids) -> Ids:
    ids = dict(shared)
    if method != "GET":  # a write changes its target: give it a fresh one
        made = incident(api, "01")
        ids.update(incident=made.id, alert=made.alert_ids[0], etag=etag(api, made.id))
    if "{silence_id}" in path:
        made_window = Silence(province_code="01", start=auth.utcnow(),
                              end=auth.utcnow() + timedelta(hours=1), reason="planned",
                              created_by="admin", created=auth.utcnow())  # fmt: skip
        ids["silence"] = silences.create(api.es, api.indices, made_window).id
    if "{token_id}" in path:
        ids["token"] = "0" * 16
        if who != "anonymous":
            app = api.client.app
            assert isinstance(app, FastAPI)  # TestClient types it as any ASGI app
            user = app.state.directory.user(who)
            _, info = auth.create_token(api.es, api.indices, user, "to revoke", auth.utcnow())
            ids["token"] = info.id
    return ids


def _url(path: str, row: Row, ids: Ids) -> str:
    values = {"incident_id": ids["incident"], "alert_id": ids["alert"], "token_id": ids["token"],
              "key": ids["rule"], "rule_id": ids["rule"], "silence_id": ids.get("silence", ""),
              **row.fill}  # fmt: skip
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def _call(
    api: Api, key: tuple[str, str], who: str, shared: Ids, sessions: dict[str, Session]
) -> httpx2.Response:
    method, path = key
    row = ROWS[key]
    ids = _ids(api, method, path, who, shared)
    url, body = _url(path, row, ids), row.body(ids) if row.body else None
    if not Row.console_page(path):
        headers = api.headers(who)
        if row.if_match:
            headers["If-Match"] = ids["etag"]
        return api.client.request(method, url, json=body, headers=headers)
    headers, form = {}, dict(body or {})
    if who != "anonymous":
        # Signing out ends the session: that row gets a session of its own.
        session = _sign_in(api, who) if path == "/logout" else sessions[who]
        headers["Cookie"], form["csrf_token"] = session.cookie, session.csrf
    if key == ("POST", "/login"):
        page = api.client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        headers["Cookie"] = f"soc_login_csrf={api.client.cookies['soc_login_csrf']}"
        form = {"csrf_token": token.group(1), "username": "analyst", "password": PASSWORD}
        api.client.cookies.clear()
    if method == "GET":
        return api.client.get(url, headers=headers, follow_redirects=False)
    return api.client.request(method, url, data=form, headers=headers, follow_redirects=False)


@pytest.fixture(scope="module")
def api(shared_api: Api) -> Api:
    return shared_api


@pytest.fixture(scope="module")
def shared(shared_api: Api) -> Ids:
    made, other = incident(shared_api, "01"), incident(shared_api, "01")
    rule = load(settings=shared_api.settings).runnable[0].id
    return {"incident": made.id, "alert": made.alert_ids[0], "other": other.id, "rule": rule,
            "etag": etag(shared_api, made.id), "token": "0" * 16}  # fmt: skip


@pytest.fixture(scope="module")
def sessions(shared_api: Api) -> dict[str, Session]:
    return {who: _sign_in(shared_api, who) for who in USERS}


@pytest.mark.parametrize("key", list(ROWS), ids=lambda k: f"{k[0]} {k[1]}")
def test_role_by_route_matrix(
    api: Api, shared: Ids, sessions: dict[str, Session], key: tuple[str, str]
) -> None:
    got = {who: _call(api, key, who, shared, sessions).status_code for who in WHO}
    want = {who: _expected(ROWS[key], key[1], who) for who in WHO}
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
        detail = missing.json()["detail"].replace(made.id, "").replace(made.alert_ids[0], "")
        assert "01" not in detail
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
