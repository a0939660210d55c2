"""Build the Elasticsearch client from the settings and wait for the cluster.

The bare integ-test server has no ``GET /``, so ``ping()`` and ``info()`` fail against it; health
is asked of ``_cluster/health``, which every cluster answers.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch
from elasticsearch.serializer import JsonSerializer

from soc.config import Settings
from soc.errors import ElasticsearchUnavailable


def make_client(settings: Settings) -> Elasticsearch:
    """A client for the configured cluster (``SOC_ES_URL``) or the managed local node."""
    auth: dict[str, object] = {}
    if settings.es_api_key is not None:
        auth["api_key"] = settings.es_api_key.get_secret_value()
    elif settings.es_username is not None:
        password = settings.es_password.get_secret_value() if settings.es_password else ""
        auth["basic_auth"] = (settings.es_username, password)
    if settings.es_ca_file is not None:
        auth["ca_certs"] = str(settings.es_ca_file)
    return Elasticsearch(
        settings.effective_es_url,
        request_timeout=settings.es_request_timeout,
        retry_on_timeout=True,
        max_retries=3,
        serializers={JsonSerializer.mimetype: OrjsonDecoding()},
        **auth,  # type: ignore[arg-type]
    )


class OrjsonDecoding(JsonSerializer):
    """The client's JSON serializer, decoding answers with orjson (several times faster than
    ``json`` on the answer of a 2,000-action ``_bulk``); requests are encoded as before."""

    def json_loads(self, data: bytes) -> Any:
        return orjson.loads(data)


def wait_until_healthy(es: Elasticsearch, timeout: float = 60.0) -> str:
    """Wait for status yellow or green; return it, or raise :class:`ElasticsearchUnavailable`."""
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while True:
        try:
            health = es.cluster.health(wait_for_status="yellow", timeout="5s")
            status = str(health["status"])
            if status in ("green", "yellow"):
                return status
            last_error = f"status {status}"
        except (TransportConnectionError, TransportError, ApiError) as exc:
            last_error = str(exc)
        if time.monotonic() >= deadline:
            raise ElasticsearchUnavailable(
                f"Elasticsearch at {_url(es)} is not healthy after {timeout:.0f}s ({last_error}). "
                "Start the local node with `soc es start`, or check SOC_ES_URL and credentials."
            )
        time.sleep(1.0)


def _url(es: Elasticsearch) -> str:
    nodes = es.transport.node_pool.all()
    return str(nodes[0].base_url) if nodes else "?"
