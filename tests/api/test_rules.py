"""Rules through the API: listed with their tuning, disabled and enabled by an admin, audited."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api


@pytest.fixture(scope="module")
def api(shared_api: Api) -> Api:
    return shared_api


def test_an_admin_disables_and_enables_a_rule(api: Api) -> None:
    listed = api.client.get("/api/v1/rules", headers=api.headers("analyst"))
    assert listed.status_code == 200
    rule = listed.json()[0]
    assert rule["enabled"] is True
    assert rule["path"].endswith((".yml", ".yaml"))
    off = api.client.post(f"/api/v1/rules/{rule['id']}/disable", headers=api.headers("admin"))
    assert off.json()["enabled"] is False
    again = api.client.get(f"/api/v1/rules/{rule['id']}", headers=api.headers("analyst"))
    assert again.json()["enabled"] is False
    on = api.client.post(f"/api/v1/rules/{rule['id']}/enable", headers=api.headers("admin"))
    assert on.json()["enabled"] is True
    api.es.indices.refresh(index=api.indices.audit)
    latest = api.es.search(
        index=api.indices.audit,
        query={"term": {"target.id": rule["id"]}},
        sort=[{"@timestamp": "desc"}],
        size=2,
    )  # the access matrix may have switched the same rule earlier in the session
    assert [h["_source"]["action"] for h in latest["hits"]["hits"]] == [
        "rule.enable",
        "rule.disable",
    ]
    assert (
        api.client.get("/api/v1/rules/no-such-rule", headers=api.headers("admin")).status_code
        == 404
    )
