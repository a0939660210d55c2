"""The one alerts writer against the real Elasticsearch: created once, counted when already there,
settled to the final count without losing triage, and a refused write named by a SocError."""

from __future__ import annotations

import pytest
from elasticsearch import Elasticsearch

from soc.alerts import store
from soc.errors import AlertWriteError, ElasticsearchError
from soc.es.indices import Indices
from tests.incidents.factory import make_alert


def test_created_once_then_settled_without_losing_triage(es: Elasticsearch, ready: Indices) -> None:
    early, other = make_alert(count=3), make_alert(minute=5)
    assert store.create(es, ready, [early, other], refresh=True) == (2, 0)
    assert store.create(es, ready, [make_alert(count=7)]) == (0, 1)  # an early count never grows
    assert es.get(index=ready.alerts, id=early.id)["_source"]["alert"]["count"] == 3

    es.update(index=ready.alerts, id=early.id, doc={"alert": {"status": "acknowledged"}})
    final, new = make_alert(count=12), make_alert(minute=10)
    assert store.settle(es, ready, [final, new]) == (1, 1)
    doc = es.get(index=ready.alerts, id=early.id)["_source"]
    assert (doc["alert"]["count"], doc["alert"]["status"]) == (12, "acknowledged")
    assert store.create(es, ready, []) == store.settle(es, ready, []) == (0, 0)


def test_a_refused_write_names_the_alert(es: Elasticsearch, ready: Indices) -> None:
    es.indices.put_settings(index=ready.alerts, settings={"index.blocks.write": True})
    alert = make_alert()
    try:
        with pytest.raises(AlertWriteError, match=alert.id) as raised:
            store.create(es, ready, [alert])
    finally:
        es.indices.put_settings(index=ready.alerts, settings={"index.blocks.write": False})
    assert isinstance(raised.value, ElasticsearchError)
