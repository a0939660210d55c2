"""Maintenance windows through the API: declared within one's provinces, listed, ended, audited."""

from __future__ import annotations

from datetime import timedelta

from soc.incidents.models import utcnow
from tests.api.conftest import Api


def _window(**extra: object) -> dict[str, object]:
    now = utcnow()
    return {
        "province": "01",
        "ward": None,
        "service": "web-portal",
        "start": (now - timedelta(minutes=1)).isoformat(),
        "end": (now + timedelta(hours=2)).isoformat(),
        "reason": "nâng cấp máy chủ cổng thông tin",
        **extra,
    }


def test_provincial_it_declares_maintenance_for_its_province_only(shared_api: Api) -> None:
    api = shared_api
    made = api.client.post("/api/v1/silences", json=_window(), headers=api.headers("it_right"))
    assert made.status_code == 201, made.text
    silence = made.json()
    assert silence["created_by"] == "it_right"
    other = api.client.post("/api/v1/silences", json=_window(), headers=api.headers("it_wrong"))
    assert other.status_code == 404, other.text
    listed = api.client.get("/api/v1/silences", headers=api.headers("it_right")).json()
    assert silence["id"] in {s["id"] for s in listed}
    hidden = api.client.get("/api/v1/silences", headers=api.headers("it_wrong")).json()
    assert silence["id"] not in {s["id"] for s in hidden}

    ended = api.client.delete(f"/api/v1/silences/{silence['id']}", headers=api.headers("admin"))
    assert ended.status_code == 200, ended.text
    listed = api.client.get("/api/v1/silences", headers=api.headers("admin")).json()
    assert silence["id"] not in {s["id"] for s in listed}, "an ended window is over"

    api.es.indices.refresh(index=api.indices.audit)
    audited = api.es.search(index=api.indices.audit, query={"term": {"target.id": silence["id"]}})
    assert audited["hits"]["total"]["value"] == 2


def test_a_window_that_ends_before_it_starts_or_a_foreign_commune_is_refused(
    shared_api: Api,
) -> None:
    api = shared_api
    now = utcnow()
    backwards = _window(end=(now - timedelta(hours=1)).isoformat())
    refused = api.client.post("/api/v1/silences", json=backwards, headers=api.headers("admin"))
    assert refused.status_code in (400, 422)
    foreign = _window(ward="26506")  # a ward of Hồ Chí Minh City, not of Hà Nội
    refused = api.client.post("/api/v1/silences", json=foreign, headers=api.headers("admin"))
    assert refused.status_code in (400, 422)
