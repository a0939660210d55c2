"""The client made from the settings: answers are decoded with orjson (the collector's shipper
decodes one 2,000-item ``_bulk`` answer per batch), with the same values ``json`` would give;
``SOC_ES_URL`` lists several nodes and a dead one is passed over (the three-node kill test is
``test_cluster.py``)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from soc.config import load_settings
from soc.errors import ConfigError
from soc.es.client import OrjsonDecoding, make_client, wait_until_healthy
from tests.conftest import free_port


def test_answers_are_decoded_with_orjson_to_the_same_values(es: Elasticsearch, prefix: str) -> None:
    for mimetype in ("application/json", "application/vnd.elasticsearch+json"):
        assert isinstance(es.transport.serializers.get_serializer(mimetype), OrjsonDecoding)
    doc: dict[str, Any] = {
        "message": 'Dịch vụ công \u2028 "quoted" \\ tab\t',
        "big": 2**62,
        "negative": -7,
        "ratio": 0.1,
        "nested": {"numbers": [1, None, 3], "flags": [True, False], "empty": {}},
    }
    index = f"{prefix}-client"
    es.index(index=index, id="one", document=doc, refresh=True)
    assert es.get(index=index, id="one")["_source"] == doc
    answer = es.bulk(
        operations=[{"create": {"_index": index, "_id": "one"}}, doc],
        filter_path="errors,items.*.status",
    )
    assert answer.body == {"errors": True, "items": [{"create": {"status": 409}}]}


def test_soc_es_url_takes_several_nodes() -> None:
    settings = load_settings(es_url=" https://a.example:9200/, https://b.example:9200 ,")
    assert settings.es_urls == ["https://a.example:9200", "https://b.example:9200"]
    client = make_client(settings)
    assert len(client.transport.node_pool.all()) == 2
    with pytest.raises(ConfigError, match="URL 2 of 2"):
        load_settings(es_url="https://a.example:9200,b.example:9200")


def test_a_dead_node_in_the_list_is_skipped_at_once(es_url: str, prefix: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    settings = load_settings(es_url=f"{dead},{es_url}", es_request_timeout=5)
    client = make_client(settings)
    started = time.monotonic()
    assert wait_until_healthy(client, timeout=10, settings=settings) in ("green", "yellow")
    index = f"{prefix}-failover"
    for n in range(20):  # round robin: every other request would go to the dead node
        client.index(index=index, id=str(n), document={"n": n})
    client.indices.refresh(index=index)
    assert client.count(index=index)["count"] == 20
    assert time.monotonic() - started < 10
