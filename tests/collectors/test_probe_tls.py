"""The probe's TLS checks against real local HTTPS servers with certificates made in the test.

A private CA signs a certificate valid for 30 more days and one that expired 2 days ago; a third
server shows a self-signed certificate. A probe source trusting the CA (``ca_file``) runs in a
real collector into the real Elasticsearch: the valid endpoint's event says 30 days left, the
other two are failures whose ``error.message`` says why, and nothing crashes.
"""

from __future__ import annotations

import http.server
import ipaddress
import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from elasticsearch import Elasticsearch

from collectors.flows import Collector
from soc.es.indices import Indices
from tests.collectors.conftest import count
from tests.collectors.test_sources import _Page, identity_holds, wait_for

NOW = datetime.now(UTC)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    *,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    not_before: datetime,
    not_after: datetime,
    ca: bool = False,
) -> x509.Certificate:
    issuer_name, signer = (issuer[0].subject, issuer[1]) if issuer else (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    return builder.sign(signer, hashes.SHA256())


def _write(directory: Path, name: str, cert: x509.Certificate, key: Any = None) -> Path:
    path = directory / f"{name}.pem"
    data = cert.public_bytes(serialization.Encoding.PEM)
    if key is not None:
        data += key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    path.write_bytes(data)
    return path


@pytest.fixture
def https(tmp_path: Path) -> Iterator[tuple[Path, dict[str, int]]]:
    """The CA file and three HTTPS servers: ``valid`` (30 days left), ``expired``, ``self``."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert(
        "soc test CA",
        ca_key,
        issuer=None,
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=365),
        ca=True,
    )
    ca_file = _write(tmp_path, "ca", ca)
    # An hour past the 30th day, so whole days left are 30 however long the test runs.
    lifetimes = {
        "valid": (NOW - timedelta(days=1), NOW + timedelta(days=30, hours=1), (ca, ca_key)),
        "expired": (NOW - timedelta(days=60), NOW - timedelta(days=2), (ca, ca_key)),
        "self": (NOW - timedelta(days=1), NOW + timedelta(days=90), None),
    }
    servers: list[http.server.ThreadingHTTPServer] = []
    ports: dict[str, int] = {}
    for name, (start, end, issuer) in lifetimes.items():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert("localhost", key, issuer=issuer, not_before=start, not_after=end)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(_write(tmp_path, name, cert, key))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        ports[name] = int(server.server_address[1])
    yield ca_file, ports
    for server in servers:
        server.shutdown()
        server.server_close()


def test_tls_days_left_expired_and_self_signed(
    run_collector: Callable[..., Collector],
    es: Elasticsearch,
    ready: Indices,
    https: tuple[Path, dict[str, int]],
) -> None:
    ca_file, ports = https
    targets = [
        {
            "name": name,
            "url": f"https://localhost:{port}/",
            "service": "web-portal",
            "province": "01",
            "keyword": "Dịch vụ công",
        }
        for name, port in ports.items()
    ]
    c = run_collector(
        [
            {
                "id": "tls",
                "type": "probe",
                "interval": 0.3,
                "timeout": 5,
                "ca_file": str(ca_file),
                "targets": targets,
            }
        ]
    )
    wait_for(lambda: c.metrics.get("tls", "read") >= 3)
    assert c.stop(drain_timeout=20)
    identity_holds(c, "tls")
    assert count(es, ready.events) == c.metrics.get("tls", "read")
    by_name: dict[str, dict[str, Any]] = {}
    for hit in es.search(index=ready.events, size=100)["hits"]["hits"]:
        by_name[hit["_source"]["soc"]["probe"]["target"]] = hit["_source"]
    assert set(by_name) == set(ports)

    valid = by_name["valid"]
    assert valid["soc"]["probe"]["up"] is True
    assert valid["soc"]["probe"]["cert_days_left"] == 30
    assert valid["soc"]["probe"]["keyword_found"] is True
    assert valid["http"]["response"]["status_code"] == 200
    assert valid["event"]["outcome"] == "success"

    expired = by_name["expired"]
    assert expired["soc"]["probe"]["up"] is False
    assert expired["event"]["outcome"] == "failure"
    assert "certificate has expired" in expired["error"]["message"]
    assert "http" not in expired  # no response: the handshake was refused

    self_signed = by_name["self"]
    assert self_signed["soc"]["probe"]["up"] is False
    assert self_signed["event"]["outcome"] == "failure"
    assert "CERTIFICATE_VERIFY_FAILED" in self_signed["error"]["message"]
    assert "self-signed" in self_signed["error"]["message"].replace(" signed", "-signed")
