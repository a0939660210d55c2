"""Rules through the API: listed with their tuning, disabled and enabled by an admin, audited."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.conftest import Api


@pytest.fixture(scope="module")
def api(shared_api: Api) -> Api:
    return shared_api


def test_an_admin_disables_and_enables_a_rule(api: Api) -> None:
    listed = api.client.get("/api/v1/rules", headers=api.headers("analyst"))
    assert listed.status_code == 200
    # a shipped rule by name: the listing's order also holds rules other tests upload (disabled)
    rule = next(r for r in listed.json() if r["name"] == "probe_service_down")
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


BROKEN = (
    "title: Broken upload\n"
    "id: 0d1f9a4e-2b7c-4c1e-8f3a-5e6d7c8b9a01\n"
    "logsource:\n  product: soc\n  service: vneid\n"
    "detection:\n  selection:\n    event.action|nosuchmodifier: login\n"
    "  condition: selection\n"
    "level: low\n"
)
GOOD = (
    BROKEN.replace("Broken upload", "Good upload")
    .replace("|nosuchmodifier", "")
    .replace("0d1f9a4e-2b7c-4c1e-8f3a-5e6d7c8b9a01", "0d1f9a4e-2b7c-4c1e-8f3a-5e6d7c8b9a02")
)


def test_an_upload_with_an_error_is_refused_naming_file_and_line(api: Api) -> None:
    bad = api.client.post(
        "/api/v1/rules",
        json={"file_name": "broken-upload.yml", "text": BROKEN},
        headers=api.headers("admin"),
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert "broken-upload.yml:" in bad.json()["detail"]
    assert "nosuchmodifier" in bad.json()["detail"]
    assert api.settings.rules_dir is not None
    assert not (api.settings.rules_dir / "uploaded" / "broken-upload.yml").exists()


def test_a_valid_upload_is_saved_disabled_and_listed(api: Api) -> None:
    made = api.client.post(
        "/api/v1/rules",
        json={"file_name": "good-upload.yml", "text": GOOD},
        headers=api.headers("admin"),
    )
    assert made.status_code == 201, made.text
    [rule] = made.json()["rules"]
    assert rule["enabled"] is False
    listed = api.client.get("/api/v1/rules", headers=api.headers("analyst")).json()
    assert rule["id"] in {r["id"] for r in listed}


def test_rule_tests_and_backtest_through_the_api(api: Api) -> None:
    rule_id = "national_db_lookup_failure"
    cases = api.client.post(f"/api/v1/rules/{rule_id}/test", headers=api.headers("admin"))
    assert cases.status_code == 200, cases.text
    results = {(c["expect"], c["name"]): c for c in cases.json()}
    assert results[("fire", "a failed civil-status look-up")]["findings"] >= 1
    assert results[("quiet", "a successful look-up")]["findings"] == 0
    assert all(c["passed"] for c in results.values())
    back = api.client.post(
        f"/api/v1/rules/{rule_id}/backtest", json={"hours": 1}, headers=api.headers("admin")
    )
    assert back.status_code == 200, back.text
    assert back.json()["windows"] >= 1
    too_long = api.client.post(
        f"/api/v1/rules/{rule_id}/backtest", json={"hours": 10_000}, headers=api.headers("admin")
    )
    assert too_long.status_code == 422


def test_exceptions_need_a_known_field_and_are_listed(api: Api) -> None:
    rule_id = "national_db_lookup_failure"
    path = f"/api/v1/rules/{rule_id}/exceptions"
    body = {
        "field": "source.ip",
        "value": "203.0.113.7",
        "reason": "vendor scan",
        "expires_in_hours": 1,
    }
    added = api.client.post(path, json=body, headers=api.headers("admin"))
    assert added.status_code == 201, added.text
    assert any(e["value"] == "203.0.113.7" and e["author"] == "admin" for e in added.json())
    unknown = api.client.post(
        path, json={**body, "field": "no.such.field"}, headers=api.headers("admin")
    )
    assert unknown.status_code == 422
    assert "no.such.field" in unknown.json()["detail"]
    listed = api.client.get(path, headers=api.headers("analyst"))
    assert any(e["value"] == "203.0.113.7" for e in listed.json())


SIGMAHQ = Path(__file__).resolve().parents[1] / "fixtures" / "sigmahq"


def test_a_sigmahq_file_uploads_unchanged_under_its_own_name(api: Api) -> None:
    name = "web_sqli_keywords_in_uri_query.yml"
    text = (SIGMAHQ / name).read_text(encoding="utf-8")
    made = api.client.post("/api/v1/rules", json={"file_name": name, "text": text},
                           headers=api.headers("admin"))  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.json()["file_name"] == name
    [rule] = made.json()["rules"]
    assert rule["path"].endswith(f"uploaded/{name}")
    assert rule["enabled"] is False
    assert api.settings.rules_dir is not None
    assert (api.settings.rules_dir / "uploaded" / name).read_text(encoding="utf-8") == text
    back = api.client.post(f"/api/v1/rules/{rule['id']}/backtest", json={"hours": 1},
                           headers=api.headers("admin"))  # fmt: skip
    assert back.status_code == 200, back.text
    assert back.json()["events"] >= 0
    assert isinstance(back.json()["sample"], list)


@pytest.mark.parametrize("name", ["../escape.yml", "sub/dir.yml", ".hidden.yml", "rule.yaml",
                                  "spaced name.yml"])  # fmt: skip
def test_a_file_name_that_is_a_path_or_not_yml_is_refused(api: Api, name: str) -> None:
    text = (SIGMAHQ / "web_etc_passwd_keyword.yml").read_text(encoding="utf-8")
    bad = api.client.post("/api/v1/rules", json={"file_name": name, "text": text},
                          headers=api.headers("admin"))  # fmt: skip
    assert bad.status_code == 422, bad.text
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert "file_name" in bad.text
