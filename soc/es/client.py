"""Build the Elasticsearch client from the settings, wait for the cluster, and say what is wrong.

* ``SOC_ES_URL`` may list several nodes (comma-separated). The client spreads requests over them;
  a node that refuses connections or times out is marked dead for a while and the request is
  retried on another one at once, so ingest and detection go on when one node dies. With
  ``SOC_ES_SNIFF`` the client also learns the cluster's other nodes from ``_nodes/http``.
* A refused credential (401), a missing privilege (403) and a certificate that cannot be verified
  are configuration mistakes: :func:`wait_until_healthy` and :func:`check_access` raise them at
  once with what to fix (:class:`ElasticsearchAccessError`, :class:`ElasticsearchTlsError`)
  instead of waiting them out as if the cluster were down.

The bare integ-test server has no ``GET /``, so ``ping()`` and ``info()`` fail against it; health
is asked of ``_cluster/health``, which every cluster answers.
"""

from __future__ import annotations

import re
import time
from typing import Any

import orjson
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import TlsError, TransportError
from elasticsearch import ApiError, AuthenticationException, AuthorizationException, Elasticsearch
from elasticsearch.serializer import JsonSerializer

from soc.config import Settings
from soc.errors import (
    ConfigError,
    ElasticsearchAccessError,
    ElasticsearchTlsError,
    ElasticsearchUnavailable,
)

#: Seconds a failed node is left alone before it is tried again (doubling, up to the maximum):
#: short, so that a node back from a restart takes its share again within seconds.
DEAD_NODE_BACKOFF = 1.0
MAX_DEAD_NODE_BACKOFF = 15.0


def make_client(settings: Settings) -> Elasticsearch:
    """A client for the configured cluster (``SOC_ES_URL``, one or more nodes) or the managed
    local node."""
    auth: dict[str, object] = {}
    if settings.es_api_key is not None:
        auth["api_key"] = settings.es_api_key.get_secret_value()
    elif settings.es_username is not None:
        password = settings.es_password.get_secret_value() if settings.es_password else ""
        auth["basic_auth"] = (settings.es_username, password)
    if settings.es_ca_file is not None:
        if not settings.es_ca_file.is_file():
            raise ConfigError(
                f"SOC_ES_CA_FILE={settings.es_ca_file} is not a readable file: give the PEM file "
                "of the CA that signed the cluster's HTTP certificate"
            )
        auth["ca_certs"] = str(settings.es_ca_file)
    urls = settings.es_urls
    sniff = settings.es_sniff and settings.es_url is not None
    return Elasticsearch(
        urls,
        request_timeout=settings.es_request_timeout,
        connections_per_node=settings.es_connections_per_node,
        retry_on_timeout=True,
        # Enough retries to try every listed node once more than the default would.
        max_retries=max(3, len(urls)),
        dead_node_backoff_factor=DEAD_NODE_BACKOFF,
        max_dead_node_backoff=MAX_DEAD_NODE_BACKOFF,
        sniff_on_start=sniff,
        sniff_on_node_failure=sniff,
        min_delay_between_sniffing=10.0,
        serializers={JsonSerializer.mimetype: OrjsonDecoding()},
        **auth,  # type: ignore[arg-type]
    )


def ensure_elasticsearch(settings: Settings) -> tuple[Elasticsearch, bool]:
    """A healthy client; starts the managed node first when soc manages one (True: started)."""
    from soc.es.launcher import LocalNode  # the launcher is only needed when soc runs the node

    started = LocalNode(settings).start() if settings.managed_es else False
    es = make_client(settings)
    wait_until_healthy(es, timeout=settings.es_start_timeout, settings=settings)
    return es, started


class OrjsonDecoding(JsonSerializer):
    """The client's JSON serializer, decoding answers with orjson (several times faster than
    ``json`` on the answer of a 2,000-action ``_bulk``); requests are encoded as before."""

    def json_loads(self, data: bytes) -> Any:
        return orjson.loads(data)


def wait_until_healthy(
    es: Elasticsearch, timeout: float = 60.0, *, settings: Settings | None = None
) -> str:
    """Wait for status yellow or green; return it.

    Raises :class:`ElasticsearchAccessError` or :class:`ElasticsearchTlsError` at the first such
    answer, and :class:`ElasticsearchUnavailable` when nothing healthy answered in ``timeout``.
    """
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
            raise_if_misconfigured(es, exc)
            last_error = _short(exc)
        if time.monotonic() >= deadline:
            raise ElasticsearchUnavailable(
                f"Elasticsearch at {nodes_of(es)} is not healthy after {timeout:.0f}s "
                f"({last_error}). {_advice(es, settings)}"
            )
        time.sleep(1.0)


def check_access(es: Elasticsearch) -> None:
    """One request to the cluster: raise if it refuses soc's credentials or certificate; an
    unreachable cluster is not an error here (a collector spools until it is back)."""
    try:
        es.cluster.health(timeout="2s")
    except (TransportConnectionError, TransportError, ApiError) as exc:
        raise_if_misconfigured(es, exc)


def raise_if_misconfigured(es: Elasticsearch, exc: Exception) -> None:
    """Turn a 401, a 403 or a TLS failure into the error that says what to fix."""
    where = nodes_of(es)
    if isinstance(exc, AuthenticationException):
        raise ElasticsearchAccessError(
            f"Elasticsearch at {where} refused soc's credentials (401 Unauthorized): check "
            "SOC_ES_USERNAME and SOC_ES_PASSWORD, or SOC_ES_API_KEY (expired or revoked?)"
        ) from None
    if isinstance(exc, AuthorizationException):
        raise ElasticsearchAccessError(
            f"Elasticsearch at {where} denied soc's user a privilege (403 Forbidden): "
            f"{_short(exc)}; give the user the role in docs/deploy.md (indices soc-*: all; "
            "cluster: monitor, manage_index_templates)"
        ) from None
    tls = _tls_cause(exc)
    if tls is not None:
        raise ElasticsearchTlsError(
            f"TLS to Elasticsearch at {where} failed: {tls}. When the cluster's certificate is "
            "signed by a private CA, set SOC_ES_CA_FILE to that CA's PEM file (e.g. "
            "config/certs/http_ca.crt of the cluster); check the host name in SOC_ES_URL matches "
            "the certificate"
        ) from None


def _tls_cause(exc: Exception) -> str | None:
    """The TLS failure behind ``exc``, if any, in a line (``CERTIFICATE_VERIFY_FAILED: …``)."""
    for error in (exc, *getattr(exc, "errors", ())):
        text = str(error)
        found = _SSL_REASON.search(text)
        if found:
            return f"{found.group(1)}: {found.group(2).strip()}"
        if isinstance(error, TlsError):
            return _short(error)
    return None


#: What OpenSSL says, as the client quotes it: ``[SSL: CERTIFICATE_VERIFY_FAILED] certificate
#: verify failed: unable to get local issuer certificate (_ssl.c:1006)``.
_SSL_REASON = re.compile(r"\[SSL: ([A-Z_]+)\] ([^(\]'\"]+)")


def _advice(es: Elasticsearch, settings: Settings | None) -> str:
    if settings is not None and settings.es_url is None:
        return "Start the local node with `soc es start`."
    if settings is not None:
        return "Check that the nodes in SOC_ES_URL are up and reachable from this host."
    return "Check SOC_ES_URL (or, with no SOC_ES_URL, start the local node: `soc es start`)."


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:300] + "…"


def nodes_of(es: Elasticsearch) -> str:
    """The node URLs the client knows, for messages."""
    nodes = es.transport.node_pool.all()
    return ", ".join(str(node.base_url) for node in nodes) if nodes else "?"
