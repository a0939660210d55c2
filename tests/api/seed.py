"""Incidents for the API tests, made the way production makes them: alerts, then the grouping."""

from __future__ import annotations

import itertools

from soc.incidents.grouping import group_alert
from soc.incidents.models import Incident
from tests.api.conftest import Api
from tests.incidents.factory import make_alert, wards

_counter = itertools.count()


def incident(api: Api, province: str = "01", title: str = "VNeID login failures") -> Incident:
    """A fresh incident in ``province``: a distinct rule each time, so none group together."""
    n = next(_counter)
    alert = make_alert(
        province=province, ward=wards(province, 1)[0], rule=f"rule-{n}", title=title, minute=n % 50
    )
    # No refresh: reads by id are real-time; the tests that list refresh first.
    api.es.create(index=api.indices.alerts, id=alert.id, document=alert.to_doc())
    return group_alert(api.es, api.indices, api.settings, alert)


def etag(api: Api, incident_id: str) -> str:
    got = api.client.get(f"/api/v1/incidents/{incident_id}", headers=api.headers("admin"))
    assert got.status_code == 200, got.text
    return got.headers["ETag"]
