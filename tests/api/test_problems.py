"""Bad input gets a 4xx problem response naming the field, never a 5xx."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import Any

import httpx2
import pytest
from elasticsearch import Elasticsearch
from fastapi import FastAPI

from soc.config import load_settings
from soc.es.client import make_client
from soc.es.templates import teardown
from tests.api.conftest import Api, running_api
from tests.api.seed import etag, incident

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def api(shared_api: Api) -> Api:
    """One app for the module: every test makes its own incidents, so they stay independent."""
    return shared_api


def _is_problem(answer: httpx2.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = answer.json()
    assert body["status"] == status
    assert body["title"]
    return body


def test_malformed_json_wrong_types_and_unknown_fields_name_the_field(api: Api) -> None:
    made = incident(api)
    url = f"/api/v1/incidents/{made.id}/transition"
    headers = api.headers(
        "analyst", **{"If-Match": etag(api, made.id), "Content-Type": "application/json"}
    )
    broken = _is_problem(api.client.post(url, content=b'{"to": ', headers=headers), 422)
    assert broken["errors"][0]["field"].startswith("body")
    wrong = _is_problem(api.client.post(url, json={"to": 5}, headers=headers), 422)
    assert [e["field"] for e in wrong["errors"]] == ["body.to"]
    unknown = _is_problem(
        api.client.post(url, json={"to": "acknowledged", "x": 1}, headers=headers), 422
    )
    assert [e["field"] for e in unknown["errors"]] == ["body.x"]
    assert "x" in unknown["detail"]


def test_the_input_value_is_never_echoed_back(api: Api) -> None:
    hostile = "<script>alert(1)</script>"
    answer = api.client.get(
        "/api/v1/incidents", params={"severity": hostile}, headers=api.headers("admin")
    )
    body = _is_problem(answer, 422)
    assert hostile not in answer.text
    assert body["errors"][0]["field"] == "query.severity"


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"size": 100000}, 422),
        ({"page": 0}, 422),
        ({"page": 9000, "size": 200}, 400),
        ({"since": "yesterday"}, 422),
        ({"province": "1; drop"}, 422),
        ({"q": "x" * 1000}, 422),
        ({"since": "2026-01-01T00:00:00"}, 422),
    ],
)
def test_huge_pages_and_bad_filters_are_refused(
    api: Api, params: dict[str, str | int], status: int
) -> None:
    _is_problem(
        api.client.get("/api/v1/incidents", params=params, headers=api.headers("admin")), status
    )


def test_odd_search_syntax_is_not_an_error(api: Api) -> None:
    for q in ('"unclosed', "a AND (", "*?~/[", "\\"):
        answer = api.client.get("/api/v1/incidents", params={"q": q}, headers=api.headers("admin"))
        assert answer.status_code == 200, (q, answer.text)


def test_unknown_ids_routes_and_methods_are_problems(api: Api) -> None:
    admin = api.headers("admin")
    _is_problem(api.client.get("/api/v1/incidents/does-not-exist", headers=admin), 404)
    _is_problem(api.client.get("/api/v1/incidents/bad%20id", headers=admin), 422)
    _is_problem(api.client.get("/api/v1/nowhere", headers=admin), 404)
    _is_problem(api.client.delete("/api/v1/incidents", headers=admin), 405)
    _is_problem(api.client.get("/api/v1/localities/status/99", headers=admin), 404)
    _is_problem(api.client.get("/api/v1/incidents"), 401)
    bad_token = api.client.get("/api/v1/incidents", headers={"Authorization": "Bearer nope"})
    assert _is_problem(bad_token, 401)["detail"] == "invalid or revoked API token"
    assert bad_token.headers["WWW-Authenticate"] == "Bearer"


def test_a_store_that_does_not_answer_is_a_503_to_retry_not_a_500(
    es: Elasticsearch, es_url: str, tmp_path: Path
) -> None:
    """The app started on the real node, then its client pointed at a port nothing listens on:
    the request that works otherwise is a 503 with Retry-After, not an internal error."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    prefix = f"t{uuid.uuid4().hex[:10]}"
    try:
        with running_api(es, es_url, prefix, tmp_path) as api:
            app = api.client.app
            assert isinstance(app, FastAPI)  # TestClient types it as any ASGI app
            app.state.es = make_client(load_settings(es_url=dead))
            try:
                answer = api.client.get("/api/v1/incidents", headers=api.headers("analyst"))
            finally:
                app.state.es.close()
                app.state.es = es
            body = _is_problem(answer, 503)
            assert "did not answer" in body["detail"]
            assert answer.headers["retry-after"] == "5"
    finally:
        teardown(es, prefix)
