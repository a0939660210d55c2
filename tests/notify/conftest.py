"""Fixtures for the notifier: a real SMTP server (aiosmtpd) on a free local port, a settable clock,
and a notifier wired to this test's Elasticsearch indices and that server."""

from __future__ import annotations

import email
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from elasticsearch import Elasticsearch

from soc.config import Settings
from soc.es.indices import Indices
from soc.es.templates import setup, teardown
from soc.notify.flows import Notifier
from soc.notify.render import Renderer
from soc.notify.routing import Routes, parse_routes
from soc.notify.smtp import SmtpSender

ROUTES_YAML = """\
national_soc:
  address: national-soc@soc.local
  language: en
national_copy: none           # the copies have their own tests (test_policy.py)
routes:
  - province: "04"            # Cao Bằng
    min_severity: medium
    contacts:
      - address: it@caobang.gov.vn
        language: vi
      - address: lead@caobang.gov.vn
        language: vi
        role: lead
  - province: Lai Châu
    min_severity: high
    contacts:
      - address: it@laichau.gov.vn
        language: en
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    rcpt: list[str]
    message: EmailMessage


@dataclass
class Handler:
    """Keeps every message it accepts; refuses the addresses in ``refuse`` with a 550."""

    received: list[Received] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        self.received.append(Received(list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


@dataclass
class Mailbox:
    """A real SMTP server on 127.0.0.1 that a test can stop and start again on the same port."""

    port: int
    handler: Handler = field(default_factory=Handler)
    controller: Controller | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def start(self) -> None:
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="localhost",
            **self.options,
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def to(self, address: str) -> list[EmailMessage]:
        return [r.message for r in self.received if address in r.rcpt]


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(port=_free_port())
    box.start()
    yield box
    box.stop()


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 3, 2, 1, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def routes() -> Routes:
    return parse_routes(ROUTES_YAML, "national-soc@soc.local", source="routes.yaml")


@pytest.fixture(scope="session")
def notify_prefix(es: Elasticsearch) -> Iterator[str]:
    """One prefix with soc's templates for all notify tests: installing every template and index
    per test took most of this package's run time on a busy node."""
    value = f"tn{uuid.uuid4().hex[:10]}"
    setup(es, Indices(value))
    yield value
    teardown(es, value)


@pytest.fixture
def fresh(es: Elasticsearch, notify_prefix: str) -> Indices:
    """The notify prefix with an empty outbox and incidents index (recreated from the templates),
    so each test starts from nothing."""
    indices = Indices(notify_prefix)
    for name in (indices.outbox, indices.incidents):
        es.options(ignore_status=404).indices.delete(index=name)
        es.indices.create(index=name)
    return indices


@pytest.fixture
def notify_settings(settings: Settings, mailbox: Mailbox, fresh: Indices) -> Settings:
    return settings.model_copy(
        update={
            "index_prefix": fresh.prefix,
            "smtp_port": mailbox.port,
            "smtp_timeout": 2.0,
            "notify_rate_limit": 3,
            "notify_rate_window": 600.0,
            "notify_retry_base": 10.0,
            "notify_max_attempts": 5,
        }
    )


@pytest.fixture
def notifier(
    es: Elasticsearch, fresh: Indices, notify_settings: Settings, routes: Routes, clock: Clock
) -> Notifier:
    renderer = Renderer("https://soc.example.vn")
    return Notifier(es, fresh, notify_settings, routes, renderer, clock)


@pytest.fixture
def sender(notify_settings: Settings) -> Iterator[SmtpSender]:
    with SmtpSender(notify_settings) as smtp:
        yield smtp
