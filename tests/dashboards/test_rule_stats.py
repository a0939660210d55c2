"""The rules page's alert statistics per rule: alerts of the last day and the false-positive rate
from analysts' verdicts, read through ``soc.alerts.service.stats_by_rule``."""

from __future__ import annotations

from datetime import timedelta

from elasticsearch import Elasticsearch

from soc.alerts import service as alerts
from soc.alerts.models import AlertStatus
from soc.es.indices import Indices
from tests.incidents.factory import T0, make_alert, write


def test_stats_count_recent_alerts_and_verdicts_per_rule(es: Elasticsearch, ready: Indices) -> None:
    noisy = [make_alert(rule="noisy", minute=m, ward=None) for m in range(4)]
    quiet = make_alert(rule="quiet", minute=0)
    write(es, ready, *noisy, quiet)
    for alert, verdict in zip(
        noisy[:3],
        [AlertStatus.FALSE_POSITIVE, AlertStatus.FALSE_POSITIVE, AlertStatus.ACKNOWLEDGED],
        strict=True,
    ):
        alerts.triage(es, ready, alert.id, verdict=verdict, actor="analyst", now=T0)
    es.indices.refresh(index=ready.alerts)
    since = noisy[2].created  # the last two noisy alerts, and the quiet one before: not recent
    stats = alerts.stats_by_rule(es, ready, since=since)
    assert stats["noisy"].recent == 2
    assert (stats["noisy"].acknowledged, stats["noisy"].false_positive) == (1, 2)
    assert stats["noisy"].false_positive_rate == 2 / 3
    assert stats["quiet"].recent == 0
    assert stats["quiet"].false_positive_rate is None
    assert alerts.stats_by_rule(es, ready, since=T0 + timedelta(days=1)) == {
        "noisy": alerts.RuleStats(0, 1, 2),
        "quiet": alerts.RuleStats(0, 0, 0),
    }
