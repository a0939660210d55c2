"""The client made from the settings: answers are decoded with orjson (the collector's shipper
decodes one 2,000-item ``_bulk`` answer per batch), with the same values ``json`` would give."""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch

from soc.es.client import OrjsonDecoding


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
