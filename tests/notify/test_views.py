"""``/api/v1/notify`` on the real app: failures visible per province, routes for admins only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from soc.notify.flows import Notifier
from soc.notify.render import Renderer
from soc.notify.routing import Routes
from soc.notify.smtp import SmtpSender
from tests.api.conftest import Api, running_api
from tests.notify.conftest import Clock, Mailbox
from tests.notify.notices import notice


@pytest.fixture
def app_api(
    es: Elasticsearch, es_url: str, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Api]:
    monkeypatch.setenv("SOC_NOTIFY_ROUTES_FILE", str(tmp_path / "routes.yaml"))
    with running_api(es, es_url, prefix, tmp_path) as running:
        yield running


def test_failures_are_listed_within_the_callers_provinces(
    app_api: Api, routes: Routes, mailbox: Mailbox, es: Elasticsearch
) -> None:
    settings = app_api.settings.model_copy(update={"smtp_port": mailbox.port})
    notifier = Notifier(es, app_api.indices, settings, routes, Renderer(), Clock())
    mailbox.handler.refuse.add("it@laichau.gov.vn")
    notifier.notify([notice("lc-1", "12"), notice("hn-1", "01")])
    with SmtpSender(settings) as sender:
        notifier.send_pending(sender)

    client = app_api.client
    failed = client.get("/api/v1/notify/outbox?status=failed", headers=app_api.headers("admin"))
    assert failed.status_code == 200, failed.text
    (item,) = failed.json()
    assert item["recipient"] == "it@laichau.gov.vn"
    assert "550" in item["last_error"]

    # Provincial IT of Hà Nội (01) sees its own province's email, not Lai Châu's failure.
    mine = client.get("/api/v1/notify/outbox", headers=app_api.headers("it_right")).json()
    assert [i["incident_ids"] for i in mine] == [["hn-1"]]
    assert client.get("/api/v1/notify/outbox").status_code == 401


def test_routes_are_checked_and_replaced_by_admins_only(app_api: Api) -> None:
    client, path = app_api.client, app_api.settings.notify_routes_file
    assert path is not None
    good = "routes:\n  - province: '04'\n    contacts: [it@caobang.gov.vn]\n"
    bad = "routes:\n  - province: '04'\n    contacts: [not-an-address]\n"
    admin = app_api.headers("admin")

    assert client.put("/api/v1/notify/routes", json={"yaml": good},
                      headers=app_api.headers("it_right")).status_code == 403  # fmt: skip
    check = client.post("/api/v1/notify/routes/check", json={"yaml": bad}, headers=admin).json()
    assert (check["valid"], check["line"]) == (False, 2)

    refused = client.put("/api/v1/notify/routes", json={"yaml": bad}, headers=admin)
    assert refused.status_code == 400
    assert ":2:" in refused.json()["detail"]
    assert not path.exists()

    saved = client.put("/api/v1/notify/routes", json={"yaml": good}, headers=admin)
    assert saved.status_code == 200, saved.text
    assert path.read_text("utf-8") == good
    shown = client.get("/api/v1/notify/routes", headers=admin).json()
    assert shown["routes"][0]["contacts"][0]["address"] == "it@caobang.gov.vn"
