"""soc.es.state: the one writer of ``<prefix>-state`` (one id scheme, compare-and-set writes)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from elasticsearch import Elasticsearch

from soc.es.indices import Indices
from soc.es.state import Entry, StateIndex, StateKind

NOW = datetime(2026, 11, 23, 3, tzinfo=UTC)


def test_entries_round_trip_under_one_id_scheme(es: Elasticsearch, ready: Indices) -> None:
    state = StateIndex(es, ready)
    entry = Entry(StateKind.SILENCE, "w1", {"x": 1}, NOW, "01", expires=NOW + timedelta(hours=1))
    state.put(entry, refresh=True)
    raw = es.get(index=ready.state, id="incident-silence:w1")["_source"]
    stamps = {"updated": "2026-11-23T03:00:00.000Z", "expires": "2026-11-23T04:00:00.000Z"}
    assert raw == {"kind": "incident-silence", "key": "01", **stamps, "data": {"x": 1}}
    assert state.get(StateKind.SILENCE, "w1") == entry
    assert [e.name for e in state.find(StateKind.SILENCE, {"term": {"key": "01"}})] == ["w1"]
    assert state.find(StateKind.SESSION) == []
    state.delete(StateKind.SILENCE, "w1")
    state.delete(StateKind.SILENCE, "w1")  # gone already is fine
    assert state.get(StateKind.SILENCE, "w1") is None


def test_create_and_replace_refuse_a_moved_document(es: Elasticsearch, ready: Indices) -> None:
    state = StateIndex(es, ready)
    first = Entry(StateKind.DETECT_LEASE, "detect", {}, NOW, owner="a")
    assert state.create(first)
    assert not state.create(replace(first, owner="b"))
    read = state.get(StateKind.DETECT_LEASE, "detect")
    assert read is not None
    assert read.version is not None
    assert state.replace(replace(first, owner="b"), read.version)
    assert not state.replace(replace(first, owner="c"), read.version)  # b moved it since
    assert state.get_many(StateKind.DETECT_LEASE, ["detect", "none"])["detect"].owner == "b"
