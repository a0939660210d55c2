"""``soc rules backtest`` with few searches gives the live engine's answer: for every shipped
rule, the backtest's alert count per locality equals the alerts the engine writes when it
evaluates the same events window by window, including events it must leave out (stamped long
before, or after, the window they arrive in) and an exception that ends mid-range."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from elasticsearch import Elasticsearch

from detectors.base import iso
from detectors.sigma import service
from detectors.sigma.runner import Engine
from detectors.sigma.search import Exception_, Tuning
from detectors.sigma.state import StateStore
from soc.config import Settings
from soc.es.indices import Indices
from soc.events.service import index_events
from tests.detectors.test_shared_search import RULES, T0, _events

NOW = T0 + timedelta(minutes=10, seconds=30)


def _odd_events() -> list[dict[str, Any]]:
    """Scanner events the engine leaves out: stamped 21 minutes before arriving (beyond a
    10-minute look-back), and stamped 2 minutes after arriving (a skewed clock)."""
    docs = []
    for stamp, arrival in ((T0 - timedelta(minutes=15), T0 + timedelta(minutes=6)),
                           (T0 + timedelta(minutes=5), T0 + timedelta(minutes=3))):  # fmt: skip
        docs.append({
            "@timestamp": iso(stamp),
            "event": {"kind": "event", "category": ["web"], "ingested": iso(arrival)},
            "locality": {"province": {"code": "96"}}, "service": {"name": "web-portal"},
            "user_agent": {"original": "sqlmap/1.8"}, "source": {"ip": "192.0.2.9"},
        })  # fmt: skip
    return docs


def test_backtest_counts_equal_the_engines_alerts_on_the_same_events(
    es: Elasticsearch, settings: Settings, ready: Indices
) -> None:
    settings = settings.model_copy(update={"detect_lookback": 600.0})
    index_events(es, ready, _events(900) + _odd_events(), refresh=True)
    ends = T0 + timedelta(minutes=2, seconds=30)
    scanner = next(r for r in RULES if r.name == "web_scanner_user_agent")
    exception = Exception_("source.ip", "203.0.113.1", "pentest", "test", ends)
    StateStore(es, ready).save_tuning(scanner.id, Tuning(exceptions=(exception,)), by="test")

    engine = service.engine(es=es, settings=settings, rules=list(RULES))
    engine.options = service.options(settings)
    engine.options = type(engine.options)(engine.options.lookback, timedelta(0))
    engine.start = NOW - timedelta(hours=1)
    engine.max_catchup = 100
    assert isinstance(engine, Engine)
    engine.early = False
    engine.tick(NOW + timedelta(seconds=10))
    es.indices.refresh(index=ready.alerts)
    hits = es.search(index=ready.alerts, size=5000, query={"match_all": {}})["hits"]["hits"]
    written: dict[str, Counter[str]] = {r.id: Counter() for r in RULES}
    for hit in hits:
        alert = hit["_source"]
        place = alert.get("locality", {}).get("province", {}).get("name", "(no locality)")
        written[alert["rule"]["id"]][place] += 1
    assert sum(sum(c.values()) for c in written.values()) >= 30

    for rule in RULES:
        result = service.backtest(es=es, settings=settings, rule=rule,
                                  since=timedelta(hours=1), now=NOW)  # fmt: skip
        assert result.windows == 60
        assert dict(result.by_locality) == dict(written[rule.id]), rule.name
        assert result.alerts == sum(written[rule.id].values())
    assert written[scanner.id], "the scanner rule fired"
    assert all(name != "Cà Mau" for c in written.values() for name in c), "odd events left out"
