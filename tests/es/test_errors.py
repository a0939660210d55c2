"""What a misconfigured connection says, and how fast: a refused credential (401), a missing
privilege (403) and a certificate soc cannot verify are reported at once with what to fix, not
waited out for ``SOC_ES_WAIT_TIMEOUT`` as a down cluster; the ``soc es start`` hint is given only
when no ``SOC_ES_URL`` is set. TLS runs through a real TLS proxy in front of the test node."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from soc.cli import app
from soc.config import load_settings
from soc.errors import (
    ConfigError,
    ElasticsearchAccessError,
    ElasticsearchTlsError,
    ElasticsearchUnavailable,
)
from soc.es.client import make_client, wait_until_healthy
from tests.conftest import free_port
from tests.es.servers import make_ca_and_cert, refusing, tls_proxy

runner = CliRunner()


@pytest.mark.parametrize(("status", "what"), [(401, "SOC_ES_PASSWORD"), (403, "privilege")])
def test_refused_credentials_are_reported_at_once(status: int, what: str) -> None:
    with refusing(status) as url:
        settings = load_settings(es_url=url, es_username="soc", es_password="wrong")
        started = time.monotonic()
        with pytest.raises(ElasticsearchAccessError, match=what) as caught:
            wait_until_healthy(make_client(settings), timeout=30, settings=settings)
    assert time.monotonic() - started < 3
    assert str(status) in str(caught.value)
    assert "soc es start" not in str(caught.value)


def test_the_cli_says_401_in_one_line_within_seconds() -> None:
    with refusing(401) as url:
        started = time.monotonic()
        result = runner.invoke(app, ["es", "setup"], env={"SOC_ES_URL": url,
                               "SOC_ES_USERNAME": "soc", "SOC_ES_PASSWORD": "wrong"})  # fmt: skip
    assert result.exit_code == 1
    assert time.monotonic() - started < 5
    assert "401 Unauthorized" in result.output
    assert "Traceback" not in result.output


def test_an_unknown_ca_is_reported_at_once_and_the_right_ca_file_works(
    es_url: str, tmp_path: Path
) -> None:
    ca, cert, key = make_ca_and_cert(tmp_path)
    with tls_proxy(es_url.removeprefix("http://"), cert, key) as https_url:
        settings = load_settings(es_url=https_url)
        started = time.monotonic()
        with pytest.raises(ElasticsearchTlsError, match="CERTIFICATE_VERIFY_FAILED") as caught:
            wait_until_healthy(make_client(settings), timeout=30, settings=settings)
        assert time.monotonic() - started < 3
        assert "SOC_ES_CA_FILE" in str(caught.value)
        trusted = load_settings(es_url=https_url, es_ca_file=ca)
        assert wait_until_healthy(make_client(trusted), timeout=10) in ("green", "yellow")


def test_a_missing_ca_file_is_a_config_error(tmp_path: Path) -> None:
    settings = load_settings(es_url="https://127.0.0.1:9", es_ca_file=tmp_path / "nope.pem")
    with pytest.raises(ConfigError, match="SOC_ES_CA_FILE"):
        make_client(settings)


def test_the_local_node_hint_only_without_soc_es_url(tmp_path: Path) -> None:
    port = free_port()
    cluster = load_settings(es_url=f"http://127.0.0.1:{port}", es_request_timeout=1)
    with pytest.raises(ElasticsearchUnavailable) as caught:
        wait_until_healthy(make_client(cluster), timeout=1, settings=cluster)
    assert "soc es start" not in str(caught.value)
    assert "SOC_ES_URL" in str(caught.value)
    local = load_settings(var_dir=tmp_path, es_http_port=port, es_request_timeout=1)
    with pytest.raises(ElasticsearchUnavailable, match="soc es start"):
        wait_until_healthy(make_client(local), timeout=1, settings=local)
