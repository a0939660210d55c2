"""The real node answers, soc's templates install idempotently, and events round-trip."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from soc.config import load_settings
from soc.demo.samples import sample_events
from soc.errors import IncompatibleMappingError
from soc.es.indices import Indices, Kind
from soc.es.templates import MAPPING_VERSION, Layout, setup, teardown
from soc.events.service import event_id, index_events
from soc.localities import catalogue


def test_node_answers_health(es: Elasticsearch) -> None:
    assert es.cluster.health()["status"] in ("green", "yellow")


def test_setup_installs_every_template_and_fixed_index(es: Elasticsearch, indices: Indices) -> None:
    report = setup(es, indices)
    for kind in Kind:
        template = es.indices.get_index_template(name=indices.template(kind))["index_templates"][0]
        assert template["index_template"]["_meta"]["soc_mapping_version"] == MAPPING_VERSION
        if kind is not Kind.EVENTS:
            assert es.indices.exists(index=indices.name(kind))
    assert sorted(report.indices_created) == sorted(
        indices.name(k) for k in Kind if k is not Kind.EVENTS
    )


def test_setup_twice_changes_nothing(es: Elasticsearch, indices: Indices) -> None:
    setup(es, indices)
    again = setup(es, indices)
    assert again.templates_written == []
    assert again.indices_created == []
    assert again.indices_updated == []
    assert len(again.templates_unchanged) == len(Kind) + 2  # + the two component templates


def test_shards_of_the_daily_event_index_are_configurable(
    es: Elasticsearch, indices: Indices, tmp_path: Path
) -> None:
    settings = load_settings(index_prefix=indices.prefix, index_shards=1, index_event_shards=3,
                             index_replicas=0, var_dir=tmp_path)  # fmt: skip
    setup(es, indices, layout=Layout.of(settings))
    day = indices.events_for(date(2026, 12, 4))
    es.index(index=day, document={"@timestamp": "2026-12-04T00:00:00Z"}, refresh=True)

    def shards(index: str) -> str:
        return str(
            es.indices.get_settings(index=index)[index]["settings"]["index"]["number_of_shards"]
        )

    assert shards(day) == "3"
    assert shards(indices.alerts) == "1"
    # A second setup with the same layout is a no-op; with another it rewrites the template.
    assert setup(es, indices, layout=Layout.of(settings)).templates_written == []
    assert setup(es, indices).templates_written != []


def test_teardown_removes_every_index_and_template_of_the_prefix_only(
    es: Elasticsearch, indices: Indices
) -> None:
    other = Indices(f"{indices.prefix}x")
    for each in (indices, other):
        setup(es, each)
        index_events(es, each, list(sample_events(catalogue(), count=3)), refresh=True)
    teardown(es, indices.prefix)
    teardown(es, indices.prefix)  # a second time: nothing left, nothing fails
    quiet = es.options(ignore_status=404)
    assert not es.indices.get(index=f"{indices.prefix}-*", allow_no_indices=True)
    assert not quiet.indices.get_index_template(name=f"{indices.prefix}-*").get("index_templates")
    found = quiet.cluster.get_component_template(name=f"{indices.prefix}-*")
    assert not found.get("component_templates")
    assert es.indices.get(index=f"{other.prefix}-*"), "a neighbouring prefix is untouched"
    teardown(es, other.prefix)


def test_incompatible_existing_index_is_refused_with_the_field(
    es: Elasticsearch, indices: Indices
) -> None:
    es.indices.create(
        index=indices.events_for(datetime(2026, 1, 1, tzinfo=UTC)),
        mappings={"properties": {"url": {"properties": {"original": {"type": "text"}}}}},
    )
    with pytest.raises(IncompatibleMappingError) as caught:
        setup(es, indices)
    assert "url.original" in str(caught.value)
    assert caught.value.index.endswith("2026.01.01")


def test_sample_events_are_indexed_and_searched_back(es: Elasticsearch, ready: Indices) -> None:
    end = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    events = list(sample_events(catalogue(), count=250, seed=3, end=end))
    result = index_events(es, ready, events, refresh=True)
    assert (result.created, result.duplicates, result.errors) == (250, 0, [])
    assert es.count(index=ready.events)["count"] == 250
    one = events[17]
    hit = es.get(index=ready.events_for(end), id=event_id(one))
    assert hit["_source"] == one
    by_service = es.search(
        index=ready.events, size=0, aggs={"s": {"terms": {"field": "service.name"}}}
    )["aggregations"]["s"]["buckets"]
    assert {b["key"] for b in by_service} >= {"vneid", "otp-gateway", "national-db"}


def test_replaying_a_batch_doubles_nothing(es: Elasticsearch, ready: Indices) -> None:
    events = list(sample_events(catalogue(), count=40, seed=5,
                                end=datetime(2026, 11, 23, tzinfo=UTC)))  # fmt: skip
    first = index_events(es, ready, events, refresh=True)
    again = index_events(es, ready, events, refresh=True)
    assert (first.created, again.created, again.duplicates) == (40, 0, 40)
    assert es.count(index=ready.events)["count"] == 40


@pytest.mark.parametrize(
    ("field", "stored", "query"),
    [
        ("user_agent.original", "Mozilla/5.0 SQLMap/1.8", "user_agent.original:*sqlmap*"),
        ("url.original", "/Login?User=ADMIN%27--", 'url.original:"/login?user=admin%27--"'),
        ("user.name", "Citizen00042", "user.name:CITIZEN00042"),
        ("error.code", "INVALID_GRANT", "error.code:invalid_grant"),
    ],
)
def test_sigma_matched_keywords_match_case_insensitively(
    es: Elasticsearch, ready: Indices, field: str, stored: str, query: str
) -> None:
    doc: dict[str, Any] = {"@timestamp": "2026-11-23T01:00:00Z"}
    node = doc
    *parents, leaf = field.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = stored
    index_events(es, ready, [doc], refresh=True)
    hits = es.search(index=ready.events, query={"query_string": {"query": query}})
    assert hits["hits"]["total"]["value"] == 1
    assert (
        es.search(index=ready.events, query={"term": {field: stored.swapcase()}})["hits"]["total"][
            "value"
        ]
        == 1
    )


def test_prune_deletes_only_event_days_older_than_kept(es: Elasticsearch, ready: Indices) -> None:
    from soc.es import retention

    for day in (date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)):
        es.indices.create(index=ready.events_for(day))
    names = retention.expired(es, ready, keep_days=1, today=date(2026, 11, 3))
    assert names == [ready.events_for(date(2026, 11, 1))]
    retention.delete(es, names)
    assert not es.indices.exists(index=names[0])
    assert es.indices.exists(index=ready.events_for(date(2026, 11, 2)))
    assert es.indices.exists(index=ready.alerts)


def test_tomorrows_event_index_is_made_ahead_once(es: Elasticsearch, ready: Indices) -> None:
    from soc.es import retention

    today = date(2026, 12, 4)
    assert retention.create_next_day(es, ready, today) is True
    assert retention.create_next_day(es, ready, today) is False
    settings = es.indices.get_settings(index=ready.events_for(date(2026, 12, 5)))
    assert next(iter(settings.values()))["settings"]["index"]["number_of_shards"] == "1"
