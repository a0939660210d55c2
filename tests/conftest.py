"""Test session fixtures: one real Elasticsearch node per session, indices namespaced per test.

The node is started with the same :class:`soc.es.launcher.LocalNode` as ``soc es start``, on free
ports, with its data in ``var/test-runs/<pid>`` (under the checkout, so that the unprivileged
user who runs it when the tests run as root can reach it), and stopped at the end. Set
``SOC_TEST_ES_URL`` to reuse an already running node instead (faster while developing).

Each test that asks for ``settings``/``indices`` gets its own index prefix, and its indices and
templates are deleted afterwards, so tests are independent and can share the node.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from soc import logs
from soc.config import PROJECT_ROOT, Settings, load_settings
from soc.es.client import make_client, wait_until_healthy
from soc.es.indices import Indices
from soc.es.launcher import LocalNode
from soc.es.templates import setup, teardown

logs.configure("WARNING")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def node_settings(run_dir: Path, **overrides: object) -> Settings:
    """Settings for a managed node of its own in ``run_dir``, sharing the installed server."""
    values: dict[str, object] = {
        "var_dir": run_dir,
        "es_install_dir": PROJECT_ROOT / "var" / "es" / "dist",
        "es_http_port": free_port(),
        "es_transport_port": free_port(),
        "es_heap": "512m",
    }
    values.update(overrides)
    return load_settings(**values)


def new_run_dir(tag: str) -> Path:
    path = PROJECT_ROOT / "var" / "test-runs" / f"{tag}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)
    path.parent.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def es_url() -> Iterator[str]:
    """URL of the session's Elasticsearch node."""
    external = os.environ.get("SOC_TEST_ES_URL")
    if external:
        yield external.rstrip("/")
        return
    run_dir = new_run_dir("session")
    node = LocalNode(node_settings(run_dir))
    node.start()
    try:
        yield node.url
    finally:
        node.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def es(es_url: str) -> Iterator[Elasticsearch]:
    client = make_client(load_settings(es_url=es_url))
    wait_until_healthy(client, timeout=60)
    yield client
    client.close()


@pytest.fixture
def prefix(es: Elasticsearch) -> Iterator[str]:
    """A fresh index prefix; everything under it is deleted after the test."""
    value = f"t{uuid.uuid4().hex[:10]}"
    yield value
    teardown(es, value)


@pytest.fixture
def settings(es_url: str, prefix: str, tmp_path: Path) -> Settings:
    """Settings pointing at the session's node, with this test's prefix and a private var dir."""
    return load_settings(es_url=es_url, index_prefix=prefix, var_dir=tmp_path)


@pytest.fixture
def indices(settings: Settings) -> Indices:
    return Indices(settings.index_prefix)


@pytest.fixture
def ready(es: Elasticsearch, indices: Indices) -> Indices:
    """This test's indices with soc's templates installed."""
    setup(es, indices)
    return indices
