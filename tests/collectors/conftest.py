"""Collector test helpers: a config file written from a dict, a running collector, counts, a
local web server for the probes."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from elasticsearch import Elasticsearch

from collectors.config import load_config
from collectors.flows import Collector
from soc.es.indices import Indices

INVENTORY: dict[str, Any] = {
    "systems": [
        {
            "id": "sim",
            "paths": [
                "**/{province}/{service}/{ward}.access.log",
                "**/{province}/{service}.access.log",
                "**/{province}/{service}.app.log",
            ],
        },
        {
            "id": "hn-portal",
            "service": "web-portal",
            "province": "01",
            "ward": "00070",
            "paths": ["**/hn/*.log*"],
            "hosts": ["portal-hn-01"],
            # sha256("push-token-hn")
            "token_sha256": "PLACEHOLDER",
        },
    ]
}

PUSH_TOKEN = "push-token-hn"


def write_config(tmp_path: Path, sources: list[dict[str, Any]], **collector: Any) -> Path:
    import hashlib

    inventory = yaml.safe_load(yaml.safe_dump(INVENTORY))
    inventory["systems"][1]["token_sha256"] = hashlib.sha256(PUSH_TOKEN.encode()).hexdigest()
    body = {
        "collector": {
            "id": "test-collector",
            "state_dir": str(tmp_path / "state"),
            "flush_interval": 0.1,
            "batch_size": 500,
            "retry_max": 0.5,
            **collector,
        },
        "inventory": inventory,
        "sources": sources,
    }
    path = tmp_path / "collector.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False), "utf-8")
    return path


def count(es: Elasticsearch, index: str, query: dict[str, Any] | None = None) -> int:
    es.indices.refresh(index=index, allow_no_indices=True, ignore_unavailable=True)
    found = es.count(
        index=index, allow_no_indices=True, ignore_unavailable=True, query=query or None
    )
    return int(found["count"])


@pytest.fixture
def run_collector(
    es: Elasticsearch, ready: Indices, tmp_path: Path
) -> Iterator[Callable[..., Collector]]:
    """Start a collector from source specs; it is stopped (and drained) after the test."""
    started: list[Collector] = []

    def start(sources: list[dict[str, Any]], **collector: Any) -> Collector:
        config = load_config(write_config(tmp_path, sources, **collector))
        running = Collector(config, es, ready)
        running.start()
        started.append(running)
        return running

    yield start
    for running in started:
        if not running._stopping.is_set():
            running.stop(drain_timeout=5)


class Page(http.server.BaseHTTPRequestHandler):
    """Base of the test pages: ``reply`` sends a status and a body; requests are not logged."""

    def reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def web_server(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[int]:
    """A real HTTP server on a free loopback port, serving ``handler`` in a thread; its port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
