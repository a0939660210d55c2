"""Outgoing webhooks: every incident notice as a signed JSON POST, through the email outbox.

Configured in ``SOC_NOTIFY_WEBHOOKS_FILE`` (docs/notify.md#webhooks)::

    webhooks:
      - name: hanoi-chat                          # letters, digits, '-'; names the HMAC key
        url: https://chat.example.gov.vn/hooks/soc
        provinces: ["Hà Nội"]                     # codes or names; "*" for every province
        min_severity: medium                      # optional (default: low)

The keys come from the environment only: ``SOC_NOTIFY_WEBHOOK_SECRETS='{"hanoi-chat": "…"}'``;
a webhook without a key is refused at load. A notice is routed to the webhooks of its province
(as email is), queued in ``<prefix>-outbox`` under an id derived from (incident, event, webhook)
with ``op_type=create``, so each event is queued exactly once however often it is noticed, and
delivered by the same claims, retries with backoff and attempt limits as email
(:meth:`soc.notify.flows.Notifier.send_pending` with :class:`WebhookSender`). A retry repeats the
same body and ``X-Soc-Delivery`` id, so a receiver that saw it already can drop it.

Signature: ``X-Soc-Signature: sha256=<hex HMAC-SHA256(key, "<X-Soc-Timestamp>.<body>")>``.
The payload (:func:`payload`) leaves out raw log samples: they are attacker-controlled and chat
tools render text. This module must not route email or read other indices than the outbox.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from soc.alerts.models import Severity
from soc.config import Settings
from soc.errors import ConfigError, LocalityError
from soc.es.indices import Indices
from soc.localities import catalogue
from soc.notify import service
from soc.notify.models import Channel, IncidentNotice, OutboxMessage, Recipient, message_id
from soc.notify.smtp import PermanentSmtpError, TransientSmtpError
from soc.yamlfile import load

log = logging.getLogger(__name__)

SCHEMA = "soc.incident.v1"
_SEVERITY_ORDER = [s.value for s in (Severity.INFORMATIONAL, Severity.LOW, Severity.MEDIUM,
                                     Severity.HIGH, Severity.CRITICAL)]  # fmt: skip


class _WebhookSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    url: str = Field(min_length=8, max_length=2000)
    provinces: tuple[str, ...] = Field(min_length=1)
    min_severity: Severity = Severity.LOW

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")) or any(c.isspace() for c in value):
            raise ValueError("an http:// or https:// URL")
        return value


class _WebhooksSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    webhooks: tuple[_WebhookSpec, ...] = ()


@dataclass(frozen=True)
class Webhook:
    name: str
    url: str
    provinces: frozenset[str] | None  # None: every province
    min_severity: Severity
    key: bytes

    def covers(self, notice: IncidentNotice) -> bool:
        if self.provinces is not None and notice.province_code not in self.provinces:
            return False
        rank = _SEVERITY_ORDER.index
        return rank(notice.severity.value) >= rank(self.min_severity.value)


def load_webhooks(settings: Settings) -> tuple[Webhook, ...]:
    """The configured webhooks; errors name the file and line."""
    path = settings.notify_webhooks_file
    if path is None:
        return ()
    data, locator = load(Path(path))
    try:
        spec = _WebhooksSpec.model_validate(data or {})
    except ValidationError as exc:
        raise locator.error(exc) from None
    found = []
    for n, item in enumerate(spec.webhooks):
        where = f"{locator.path}:{locator.line(('webhooks', n)) or 1}"
        secret = settings.notify_webhook_secrets.get(item.name)
        if secret is None or len(secret.get_secret_value()) < 16:
            raise ConfigError(f"{where}: webhook {item.name!r} needs an HMAC key of 16+ "
                              "characters in SOC_NOTIFY_WEBHOOK_SECRETS")  # fmt: skip
        found.append(Webhook(item.name, item.url, _provinces(item.provinces, where),
                             item.min_severity, secret.get_secret_value().encode()))  # fmt: skip
    return tuple(found)


def _provinces(values: tuple[str, ...], where: str) -> frozenset[str] | None:
    if "*" in values:
        return None
    try:
        return frozenset(catalogue().province(v).code for v in values)
    except LocalityError as exc:
        raise ConfigError(f"{where}: provinces: {exc}") from None


# ----------------------------------------------------------------------------- payload
def payload(notice: IncidentNotice, delivery: str, created: datetime) -> dict[str, Any]:
    """The JSON body (schema ``soc.incident.v1``, docs/notify.md#webhooks)."""
    return {
        "schema": SCHEMA,
        "delivery_id": delivery,
        "created": created.isoformat(),
        "event": notice.event.value,
        "event_key": notice.event_key,
        "escalation_level": notice.level,
        "incident": {
            "id": notice.incident_id,
            "title": notice.title,
            "severity": notice.severity.value,
            "status": notice.status,
            "service": notice.service,
            "province": {"code": notice.province_code, "name": notice.province_name},
            "wards": [{"code": w.code, "name": w.name} for w in notice.wards],
            "first_seen": notice.first_seen.isoformat(),
            "last_seen": notice.last_seen.isoformat() if notice.last_seen else None,
            "alert_count": notice.alert_count,
            "event_count": notice.event_count,
            "top_error_codes": [{"code": e.code, "count": e.count} for e in notice.top_error_codes],
            "url": notice.dashboard_url,
        },
    }


def sign(key: bytes, timestamp: str, body: bytes) -> str:
    digest = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def queue(
    es: Elasticsearch, indices: Indices, hooks: Iterable[Webhook],
    notices: Iterable[IncidentNotice], now: datetime, domain: str,
) -> tuple[int, int]:  # fmt: skip
    """Queue one delivery per (notice, webhook covering it); (queued, already queued)."""
    made = duplicates = 0
    hooks = tuple(hooks)
    for notice in notices:
        for hook in hooks:
            if not hook.covers(notice):
                continue
            mid = message_id(notice.incident_id, notice.event_key, f"webhook:{hook.name}", domain)
            body = json.dumps(payload(notice, service.doc_id(mid), now), ensure_ascii=False)
            msg = OutboxMessage(
                message_id=mid, created=now, event=notice.event_key,
                incident_ids=(notice.incident_id,), province_codes=(notice.province_code,),
                # The outbox keeps a recipient per message: a webhook's is its name, never mailed.
                recipient=Recipient(address=f"{hook.name}@webhook.invalid", name=hook.name),
                subject=f"[{notice.severity.value}] {notice.title}"[:300], text=body, html="",
                next_attempt=now, channel=Channel.WEBHOOK, webhook=hook.name,
            )  # fmt: skip
            if service.create(es, indices, msg):
                made += 1
            else:
                duplicates += 1
    return made, duplicates


# ----------------------------------------------------------------------------- delivery
class PermanentWebhookError(PermanentSmtpError):
    """The receiver refused the delivery (4xx other than 408/425/429): not retried."""


class TransientWebhookError(TransientSmtpError):
    """Unreachable, timed out, 408/425/429 or 5xx: retried with the outbox's backoff."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is answered as the 3xx it is: refused, never followed


class WebhookSender:
    """POSTs webhook messages of the outbox (``Notifier.send_pending(sender, channel=webhook)``)."""

    def __init__(self, hooks: Iterable[Webhook], timeout: float = 10.0) -> None:
        self.hooks = {h.name: h for h in hooks}
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_NoRedirect)

    def send(self, msg: OutboxMessage) -> None:
        hook = self.hooks.get(msg.webhook or "")
        if hook is None:
            raise PermanentWebhookError(f"webhook {msg.webhook!r} is no longer configured")
        body = msg.text.encode("utf-8")
        stamp = str(int(time.time()))
        # The URL's scheme is checked at load (_WebhookSpec: http or https only).
        request = urllib.request.Request(hook.url, data=body, method="POST", headers={  # noqa: S310
            "Content-Type": "application/json; charset=utf-8", "User-Agent": "soc-webhook/1",
            "X-Soc-Delivery": service.doc_id(msg.message_id), "X-Soc-Event": msg.event,
            "X-Soc-Timestamp": stamp, "X-Soc-Signature": sign(hook.key, stamp, body),
        })  # fmt: skip
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                answer.read(1024)
        except urllib.error.HTTPError as exc:
            code = exc.code
            if code in (408, 425, 429) or code >= 500:
                raise TransientWebhookError(f"{hook.name}: HTTP {code}") from None
            raise PermanentWebhookError(f"{hook.name}: HTTP {code}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TransientWebhookError(f"{hook.name}: {reason}") from None
