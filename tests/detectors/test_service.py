"""The rule-management service: backtest counts per locality without writing, and tuning refuses
bad input with a clear error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch import Elasticsearch

from detectors.base import iso
from detectors.sigma import service
from detectors.sigma.search import Exception_
from soc.config import Settings
from soc.errors import RuleError
from soc.es.indices import Indices
from soc.events.service import index_events

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _scan(minutes_ago: int, province: str, name: str) -> dict[str, object]:
    at = NOW - timedelta(minutes=minutes_ago)
    return {"@timestamp": iso(at), "event": {"kind": "event", "category": ["web"],
            "ingested": iso(at + timedelta(seconds=2))}, "service": {"name": "web-portal"},
            "user_agent": {"original": "Nuclei - Open-source project"},
            "locality": {"province": {"code": province, "name": name}}}  # fmt: skip


def test_backtest_counts_alerts_per_locality_and_writes_none(
    es: Elasticsearch, settings: Settings, ready: Indices
) -> None:
    events = [_scan(m, "01", "Thành phố Hà Nội") for m in (5, 50, 200, 201)]
    events += [_scan(30, "79", "Thành phố Hồ Chí Minh")]
    events += [_scan(60 * 30, "01", "Thành phố Hà Nội")]  # 30 h ago: outside --since 24h
    index_events(es, ready, events, refresh=True)
    rule = service.load(settings=settings).get("web_scanner_user_agent")
    progress: list[tuple[int, int]] = []
    result = service.backtest(es=es, settings=settings, rule=rule, since=timedelta(hours=24),
                              now=NOW, progress=lambda d, t: progress.append((d, t)))  # fmt: skip
    assert result.windows == 24 * 60
    assert result.alerts == 5, "one per window and province; 30 h ago is out of range"
    assert dict(result.by_locality) == {"Thành phố Hà Nội": 4, "Thành phố Hồ Chí Minh": 1}
    assert progress[-1] == (24 * 60, 24 * 60)
    assert es.count(index=ready.alerts)["count"] == 0


def test_tuning_refuses_bad_input(es: Elasticsearch, settings: Settings, ready: Indices) -> None:
    rules = service.load(settings=settings)
    scanner = rules.get("web_scanner_user_agent")
    later = datetime.now(UTC) + timedelta(days=1)
    with pytest.raises(RuleError, match=r"unknown field 'source\.ipp'"):
        service.add_exception(es=es, settings=settings, rule=scanner, exception=Exception_(
            "source.ipp", "1.2.3.4", "pentest", "an", later))  # fmt: skip
    past = datetime.now(UTC) - timedelta(hours=1)
    with pytest.raises(RuleError, match="expiry in the future"):
        service.add_exception(es=es, settings=settings, rule=scanner, exception=Exception_(
            "source.ip", "1.2.3.4", "pentest", "an", past))  # fmt: skip
    with pytest.raises(RuleError, match="not a correlation"):
        service.set_threshold(es=es, settings=settings, rule=scanner, province="01", count=3,
                              by="an")  # fmt: skip
    brute = rules.get("otp_brute_force_account")
    service.set_threshold(es=es, settings=settings, rule=brute, province="Cao Bằng", count=3,
                          by="an")  # fmt: skip
    assert service.tuning(es=es, settings=settings, rule=brute).thresholds == (("04", 3),)
    service.set_enabled(es=es, settings=settings, rule=brute, on=False, by="an")
    stored = service.tuning(es=es, settings=settings, rule=brute)
    assert stored.enabled is False
    assert stored.thresholds == (("04", 3),), "disabling keeps the thresholds"


def test_a_re_enabled_rule_resumes_from_now_without_replaying(
    es: Elasticsearch, settings: Settings, ready: Indices
) -> None:
    from detectors.sigma.state import Checkpoint, StateStore

    rule = service.load(settings=settings).get("web_scanner_user_agent")
    store = StateStore(es, ready)
    store.save_checkpoints([Checkpoint(rule.id, done_until=NOW)], NOW)
    service.set_enabled(es=es, settings=settings, rule=rule, on=False, by="an")
    service.set_enabled(es=es, settings=settings, rule=rule, on=True, by="an")
    resumed = store.checkpoints([rule.id])[rule.id].done_until
    assert resumed is not None
    assert datetime.now(UTC) - resumed < timedelta(minutes=2)
