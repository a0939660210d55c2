"""Hours of the week training never saw: no volume surge or drop is claimed there.

A demo backfills 3 days under the default 7-day training window (and a new installation has
less history than its window): the shape of the other 4 days is the floor, so Saturday's normal
traffic looked like a 50-fold surge in the busiest provinces (demo of 2026-12-05 02:44, issue
18). Pure computation: no Elasticsearch.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from detectors.anomaly import windows
from detectors.anomaly.baseline.model import HOUR, Model, fit
from detectors.anomaly.features import Features, Key, Level
from soc.alerts.anomaly import AnomalyKind
from soc.config import load_settings

END = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)  # Saturday 09:00 in Vietnam
KEY = Key(Level.PROVINCE, "79", None, "web-portal")
STEP = timedelta(minutes=5)


def _kinds(model: Model, at: datetime, count: int) -> set[AnomalyKind]:
    row = Features(KEY, at - STEP, count, counts={"http": count})
    found = windows.judge_step(model, [row], at, STEP, STEP, load_settings())
    return {d.kind for j in found for d in j.deviations}


def test_unseen_hours_claim_no_volume_deviation() -> None:
    start = END - timedelta(days=7)
    hours = [(KEY, END - (i + 1) * HOUR, 1200) for i in range(72)]  # 3 days of data
    total = sum(c for _, _, c in hours)
    model = fit(hours, [Features(KEY, start, total)], start, END)
    assert sum(model.covered) == 72
    saturday = END + timedelta(hours=1)  # last seen on Saturday 28 Nov: no data that day
    assert not model.covers(saturday - STEP, saturday)
    assert _kinds(model, saturday, 100) == set()
    # Where training saw the hour, a surge is still a surge.
    wednesday = END - timedelta(days=2)
    assert model.covers(wednesday - STEP, wednesday)
    assert AnomalyKind.VOLUME_SURGE in _kinds(model, wednesday, 2000)
