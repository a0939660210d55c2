"""Probes checked often, reported on change (``report_every``), through a running collector into
the real Elasticsearch: a healthy endpoint writes one event per ``report_every``, every failed
check is an event, and the return to health is reported at once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import ClassVar

import pytest
from elasticsearch import Elasticsearch

from collectors.flows import Collector
from collectors.sources.probe import ProbeSource
from soc.es.indices import Indices
from tests.collectors.conftest import Page, count, web_server


class _Switch(Page):
    status: ClassVar[int] = 200

    def do_GET(self) -> None:
        self.reply(type(self).status, b"ok")


@pytest.fixture
def switch() -> Iterator[int]:
    _Switch.status = 200
    with web_server(_Switch) as port:
        yield port


def _rounds(source: ProbeSource, more: int) -> None:
    target = source.rounds + more
    deadline = time.monotonic() + 20
    while source.rounds < target:
        assert time.monotonic() < deadline, "probe rounds did not advance"
        time.sleep(0.02)


def test_a_frequent_probe_reports_changes_and_failures_not_every_healthy_check(
    run_collector: Callable[..., Collector], es: Elasticsearch, ready: Indices, switch: int
) -> None:
    target = {"name": "portal", "url": f"http://127.0.0.1:{switch}/", "service": "web-portal",
              "province": "01"}  # fmt: skip
    c = run_collector([{"id": "probes", "type": "probe", "interval": 0.05, "timeout": 2,
                        "report_every": 3600, "targets": [target]}])  # fmt: skip
    source = c.source("probes")
    assert isinstance(source, ProbeSource)
    _rounds(source, 5)
    assert c.metrics.get("probes", "read") == 1, "healthy and unchanged: reported once"
    _Switch.status = 503
    _rounds(source, 2)  # the round running during the switch may still have seen 200
    down_from = source.checks
    _rounds(source, 4)
    _Switch.status = 200
    _rounds(source, 2)
    healthy_from = source.checks
    _rounds(source, 5)
    assert c.stop(drain_timeout=20)
    read = c.metrics.get("probes", "read")
    es.indices.refresh(index=ready.events)
    assert count(es, ready.events) == read
    down = count(es, ready.events, {"term": {"soc.probe.up": False}})
    up = count(es, ready.events, {"term": {"soc.probe.up": True}})
    assert down >= healthy_from - down_from - 2, "every failed check is an event"
    assert up == 2, "the first healthy check and the recovery; not the healthy checks after it"
    assert source.checks > read
