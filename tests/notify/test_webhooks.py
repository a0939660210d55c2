"""Outgoing webhooks against a real local HTTP server: JSON signed with HMAC-SHA256, routed per
province like email, queued once per event in the same outbox as email and retried by it (503,
then 200: one event, one accepted delivery, the same delivery id), refused 4xx not retried, and
the configuration refused with file:line when a webhook has no key."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from pydantic import SecretStr

from soc.config import Settings
from soc.errors import ConfigError
from soc.es.indices import Indices
from soc.notify import service
from soc.notify.flows import Notifier
from soc.notify.models import Channel, OutboxStatus
from soc.notify.render import Renderer
from soc.notify.routing import Routes
from soc.notify.webhooks import SCHEMA, WebhookSender, load_webhooks
from tests.notify.conftest import Clock
from tests.notify.notices import HOSTILE, notice

KEY = "hanoi-chat-key-0123456789"


@dataclass
class Receiver:
    """A webhook endpoint: answers the scripted statuses in turn (then 200), records requests."""

    statuses: list[int] = field(default_factory=list)
    got: list[tuple[int, str, dict[str, str], bytes]] = field(default_factory=list)
    port: int = 0

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                receiver.got.append((status, self.path, dict(self.headers.items()), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), made.handler())
    made.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield made
    server.shutdown()
    server.server_close()


def _settings(tmp_path: Path, base: Settings, port: int, **secrets: str) -> Settings:
    path = tmp_path / "webhooks.yaml"
    path.write_text(
        "webhooks:\n"
        "  - name: hanoi-chat\n"
        f"    url: http://127.0.0.1:{port}/hooks/soc\n"
        '    provinces: ["Hà Nội"]\n'
        "    min_severity: medium\n"
        "  - name: national\n"
        f"    url: http://127.0.0.1:{port}/hooks/refusing\n"
        '    provinces: ["*"]\n', encoding="utf-8")  # fmt: skip
    keys = {k.replace("_", "-"): SecretStr(v) for k, v in secrets.items()}
    return base.model_copy(update={"notify_webhooks_file": path, "notify_webhook_secrets": keys})


def test_webhooks_signed_routed_and_retried_once_per_event(
    es: Elasticsearch, fresh: Indices, notify_settings: Settings, routes: Routes, clock: Clock,
    receiver: Receiver, tmp_path: Path,
) -> None:  # fmt: skip
    settings = _settings(tmp_path, notify_settings, receiver.port, hanoi_chat=KEY,
                         national="national-key-0123456789")  # fmt: skip
    hooks = load_webhooks(settings)
    notifier = Notifier(es, fresh, settings, routes, Renderer("https://soc.example.vn"), clock,
                        hooks)  # fmt: skip
    hanoi = notice("inc-hn-1", "01", samples=())
    caobang = notice("inc-cb-1", "04")  # hostile sample text: never in a payload
    first = notifier.notify([hanoi, caobang])
    assert first.webhooks == 3, "Hà Nội: both webhooks; Cao Bằng: the national one only"
    again = notifier.notify([hanoi, caobang])
    assert again.webhooks == 0, "an event already queued is not queued again"
    # Emails and webhooks share the outbox but not their senders.
    assert all(s.message.channel is Channel.EMAIL
               for s in service.due(es, fresh, clock(), 100))  # fmt: skip

    receiver.statuses = [503, 403, 403]  # first POST fails for a while; the national refuses
    sender = WebhookSender(hooks, timeout=5)
    report = notifier.send_pending(sender, channel=Channel.WEBHOOK)
    assert report.sent == 0
    assert report.retrying + report.failed == 3
    clock.advance(seconds=60)
    report = notifier.send_pending(sender, channel=Channel.WEBHOOK)
    assert report.sent == 1, report.errors
    clock.advance(seconds=3600)
    assert notifier.send_pending(sender, channel=Channel.WEBHOOK).sent == 0, "nothing left"

    to_hanoi = [g for g in receiver.got if g[1] == "/hooks/soc"]
    assert len(to_hanoi) == 2, "503 then 200; Cao Bằng's incident never reaches Hà Nội's chat"
    accepted = [g for g in receiver.got if g[0] == 200]
    assert len(accepted) == 1, "one event, one accepted delivery"
    _, _, headers, body = accepted[0]
    assert {g[2]["X-Soc-Delivery"] for g in to_hanoi} == {headers["X-Soc-Delivery"]}
    assert to_hanoi[0][3] == body, "a retry repeats the same body"
    expected = hmac.new(KEY.encode(), headers["X-Soc-Timestamp"].encode() + b"." + body,
                        hashlib.sha256).hexdigest()  # fmt: skip
    assert headers["X-Soc-Signature"] == f"sha256={expected}"
    assert headers["Content-Type"].startswith("application/json")
    sent = json.loads(body)
    assert sent["schema"] == SCHEMA
    assert sent["delivery_id"] == headers["X-Soc-Delivery"]
    assert sent["event"] == "new"
    assert sent["incident"]["id"] == "inc-hn-1"
    assert sent["incident"]["province"] == {"code": "01", "name": hanoi.province_name}
    assert sent["incident"]["severity"] == "high"
    assert all(HOSTILE.encode() not in g[3] for g in receiver.got)
    service.refresh(es, fresh)
    webhook = {"term": {"notification.channel": "webhook"}}
    stored = es.search(index=fresh.outbox, size=20, query=webhook)["hits"]["hits"]
    statuses = sorted(h["_source"]["status"] for h in stored)
    assert statuses == [OutboxStatus.FAILED.value] * 2 + [OutboxStatus.SENT.value]


def test_a_webhook_without_a_key_is_refused_naming_file_and_line(
    notify_settings: Settings, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, notify_settings, 9, hanoi_chat=KEY)
    with pytest.raises(ConfigError, match=r"webhooks.yaml:6: webhook 'national' needs an HMAC"):
        load_webhooks(settings)
