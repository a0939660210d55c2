"""The two anomaly engines seeing one failure at one place make one incident, not two.

The 15-minute model's ratio test and the live streaming detector both judge failures (issue 18):
a storm both flag gives two alerts of the same rule id, place and service, which must join one
incident (same cause: service x failure class x locality, no entity).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from elasticsearch import Elasticsearch

from detectors.anomaly import explain, live_alerts
from detectors.anomaly.features import Features, Key, Level
from detectors.anomaly.scoring import Deviation
from detectors.anomaly.stream.bank import Finding
from detectors.anomaly.stream.engine import Verdict
from soc.alerts.anomaly import AnomalyKind
from soc.alerts.models import Window
from soc.config import Settings
from soc.es.indices import Indices
from soc.incidents import service as incidents
from soc.incidents.grouping import group_pending
from soc.incidents.service import IncidentFilter
from tests.incidents.factory import wards
from tests.incidents.test_grouping import ADMIN

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def test_a_storm_flagged_by_both_engines_is_one_incident(
    es: Elasticsearch, ready: Indices, settings: Settings
) -> None:
    key = Key(Level.COMMUNE, "01", wards("01", 1)[0], "one-stop-shop")
    # The 15-minute bucket 08:00-08:15: 20 of 40 requests 5xx against 1 % (binomial test).
    quarter = Window(start=T0, end=T0 + timedelta(minutes=15))
    row = Features(key, T0, 40, {"http": 40, "e5xx": 20, "judged": 40, "failed": 20})
    storm = Deviation("error_5xx", AnomalyKind.ERROR_STORM, "share of 5xx", 0.5, 0.01, 0.0,
                      0.2, 1e-20, "ratio", 40)  # fmt: skip
    fifteen = explain.deviation_alert(row, [storm], 0.9, quarter, T0, "own history",
                                      quarter.end + timedelta(minutes=2))  # fmt: skip
    # The stream's 5-minute bucket 08:05-08:10: 9 5xx where 0.1 was expected.
    five = Window(start=T0 + timedelta(minutes=5), end=T0 + timedelta(minutes=10))
    verdict = Verdict(at=five.end.timestamp(), value=9.0, expected=0.1, low=0.0, high=3.0,
                      p=1e-9, score=0.6, alert=True, since=five.end.timestamp())  # fmt: skip
    finding = Finding(f"{key.text()}|e5xx", verdict, (T0 - timedelta(days=3)).timestamp())
    (stream,) = live_alerts.alerts_of([finding], five, five.end + timedelta(seconds=20))
    assert fifteen.rule.id == stream.rule.id == "anomaly-error-storm"
    assert fifteen.id != stream.id
    for alert in (stream, fifteen):  # in the order the job writes them
        es.create(index=ready.alerts, id=alert.id, document=alert.to_doc())
    es.indices.refresh(index=ready.alerts)
    assert group_pending(es, ready, settings) == 2
    es.indices.refresh(index=ready.incidents)
    page = incidents.search(es, ready, IncidentFilter(size=10), user=ADMIN)
    [incident] = page.items
    assert set(incident.alert_ids) == {fifteen.id, stream.id}
    assert incident.ward_code == key.ward
    assert incident.service == "one-stop-shop"
