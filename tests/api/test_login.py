"""Dashboard login: session cookie, CSRF on writes, logout; API tokens revocable and hashed."""

from __future__ import annotations

import hashlib
import time

import pytest

from soc.auth import service as auth
from soc.auth.models import Role, User
from tests.api.conftest import PASSWORD, Api
from tests.api.seed import etag, incident


@pytest.fixture(scope="module")
def api(shared_api: Api) -> Api:
    return shared_api


def test_login_sets_a_strict_httponly_cookie_and_writes_need_the_csrf_token(api: Api) -> None:
    client = api.client
    answer = client.post("/api/v1/auth/login", json={"username": "analyst", "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    csrf = answer.json()["csrf_token"]
    try:
        assert client.get("/api/v1/auth/me").json()["name"] == "analyst"
        made = incident(api)
        url = f"/api/v1/incidents/{made.id}/comments"
        no_csrf = client.post(url, json={"text": "hi"}, headers={"If-Match": etag(api, made.id)})
        assert no_csrf.status_code == 403
        with_csrf = client.post(
            url, json={"text": "hi"}, headers={"If-Match": etag(api, made.id), "X-CSRF-Token": csrf}
        )
        assert with_csrf.status_code == 200
        assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
        assert client.get("/api/v1/auth/me").status_code == 401
    finally:
        client.cookies.clear()


def test_wrong_passwords_and_unknown_users_get_the_same_401(api: Api) -> None:
    a = api.client.post("/api/v1/auth/login", json={"username": "analyst", "password": "nope"})
    b = api.client.post("/api/v1/auth/login", json={"username": "ghost", "password": "nope"})
    assert a.status_code == b.status_code == 401
    assert a.json()["detail"] == b.json()["detail"]
    api.es.indices.refresh(index=api.indices.audit)
    failed = api.es.count(
        index=api.indices.audit,
        query={
            "bool": {
                "filter": [{"term": {"action": "auth.login"}}, {"term": {"outcome": "failure"}}]
            }
        },
    )
    assert failed["count"] >= 2


def test_a_token_works_until_revoked_and_is_stored_only_hashed(api: Api) -> None:
    made = api.client.post(
        "/api/v1/auth/tokens", json={"label": "ci"}, headers=api.headers("it_right")
    )
    assert made.status_code == 201
    secret, token_id = made.json()["token"], made.json()["info"]["id"]
    mine = {"Authorization": f"Bearer {secret}"}
    assert api.client.get("/api/v1/auth/me", headers=mine).json()["name"] == "it_right"
    stored = api.es.search(index=api.indices.state, query={"term": {"key": token_id}})
    assert secret not in str(stored.body)
    # Another provincial user cannot revoke it; its owner can.
    other = api.client.delete(f"/api/v1/auth/tokens/{token_id}", headers=api.headers("it_wrong"))
    assert other.status_code == 404
    assert api.client.delete(f"/api/v1/auth/tokens/{token_id}", headers=mine).status_code == 200
    assert api.client.get("/api/v1/auth/me", headers=mine).status_code == 401


def test_a_token_revoked_by_another_process_stops_working_within_the_cache_bound(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another worker or `soc auth token revoke` writes the store only: this process's memory of
    # the token (soc.auth.cache) must lapse within its TTL, shortened here to keep the test quick.
    monkeypatch.setattr(auth.CACHE, "ttl", 0.5)
    user = User(name="it_right", role=Role.PROVINCIAL_IT, provinces=("01",))
    secret, info = auth.create_token(api.es, api.indices, user, "other", auth.utcnow())
    mine = {"Authorization": f"Bearer {secret}"}
    assert api.client.get("/api/v1/auth/me", headers=mine).status_code == 200
    doc_id = f"api-token:{hashlib.sha256(secret.encode()).hexdigest()}"
    api.es.update(
        index=api.indices.state,
        id=doc_id,
        doc={"data": {**info.model_dump(), "revoked": True}},
        refresh=True,
    )
    time.sleep(0.6)
    assert api.client.get("/api/v1/auth/me", headers=mine).status_code == 401


def test_html_pages_carry_the_csp_and_api_answers_stay_json_and_no_store(api: Api) -> None:
    page = api.client.get("/login")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["cache-control"] == "no-store"
    listed = api.client.get("/api/v1/incidents", headers=api.headers("analyst"))
    assert listed.status_code == 200
    assert listed.json()["items"] is not None
    assert "content-security-policy" not in listed.headers
    assert listed.headers["cache-control"] == "no-store"
