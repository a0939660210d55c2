"""The notifier: incident notices in, emails out, through the outbox.

:meth:`Notifier.notify` routes each notice, renders one email per recipient and queues it in the
outbox (held for a digest when the recipient is over its rate limit). :meth:`Notifier.send_pending`
claims due messages, hands them to SMTP and records every outcome (sent, retry with backoff,
permanent failure). :meth:`Notifier.flush_digests` batches held messages into one digest per
recipient. Which notices an incident's state calls for (escalation included) is decided in
:mod:`soc.notify.adapter`, which imports this module, never the reverse. Nothing here knows index
names or SMTP details; it orchestrates.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from typing import Protocol

from elasticsearch import Elasticsearch

from soc.config import Settings
from soc.errors import RouteError
from soc.es.indices import Indices
from soc.notify import service
from soc.notify.models import (
    Channel,
    IncidentNotice,
    NoticeEvent,
    OutboxMessage,
    OutboxStatus,
    Recipient,
    message_id,
)
from soc.notify.render import Renderer
from soc.notify.routing import Routes, default_routes, load_routes, validate_only_own_provinces
from soc.notify.smtp import PermanentSmtpError, SmtpUnavailable, TransientSmtpError
from soc.notify.webhooks import Webhook, load_webhooks
from soc.notify.webhooks import queue as queue_webhooks

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
#: How long a sender's claim on a message lasts before another sender may retry it.
CLAIM_SECONDS = 300.0


class Sender(Protocol):
    """Delivers one outbox message; raises :class:`PermanentSmtpError` (never retried),
    :class:`TransientSmtpError` (retried with backoff) or :class:`SmtpUnavailable` (the rest of
    the batch waits too). SMTP and webhooks (:mod:`soc.notify.webhooks`) both implement it."""

    def send(self, msg: OutboxMessage) -> None: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class NotifyReport:
    queued: int = 0
    held: int = 0
    duplicates: int = 0
    unrouted: list[str] = field(default_factory=list)
    #: Webhook deliveries queued (soc.notify.webhooks).
    webhooks: int = 0


@dataclass
class SendReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class Notifier:
    """Turns notices into outbox messages and outbox messages into delivered emails."""

    es: Elasticsearch
    indices: Indices
    settings: Settings
    routes: Routes
    renderer: Renderer
    clock: Clock = utc_now
    #: Outgoing webhooks, routed per province like email (soc.notify.webhooks).
    hooks: tuple[Webhook, ...] = ()

    @classmethod
    def from_settings(
        cls, es: Elasticsearch, settings: Settings, clock: Clock = utc_now
    ) -> Notifier:
        national = settings.notify_national_soc
        routes = (
            load_routes(settings.notify_routes_file, national)
            if settings.notify_routes_file
            else default_routes(national)
        )
        renderer = Renderer(settings.notify_dashboard_url, settings.notify_template_dir)
        hooks = load_webhooks(settings)
        return cls(es, Indices(settings.index_prefix), settings, routes, renderer, clock, hooks)

    def reload_routes(self) -> None:
        """Pick up an edited routes file; a broken one is refused and the current routes kept."""
        path = self.settings.notify_routes_file
        if path is None:
            return
        try:
            self.routes = load_routes(path, self.settings.notify_national_soc)
        except RouteError as exc:
            log.error("routes file refused, the previous routes stay in use: %s", exc)

    @property
    def _domain(self) -> str:
        address = parseaddr(self.settings.notify_from)[1]
        return address.rpartition("@")[2] or "soc.local"

    def notify(self, notices: Iterable[IncidentNotice]) -> NotifyReport:
        """Queue one email per (notice, recipient) and one delivery per (notice, webhook); a
        notice already queued is not queued again."""
        notices = list(notices)
        report = NotifyReport()
        service.refresh(self.es, self.indices)
        # Emails each recipient got in the window, counted once per batch and then kept up to date
        # here: searching after every write would need a refresh per email.
        recent: dict[str, int] = {}
        wanted: list[tuple[str, IncidentNotice, Recipient]] = []
        for notice in notices:
            recipients = self.routes.recipients(notice)
            if not recipients:
                report.unrouted.append(notice.incident_id)
            for recipient in recipients:
                key = notice.event_key
                mid = message_id(notice.incident_id, key, recipient.address, self._domain)
                wanted.append((mid, notice, recipient))
        # A scheduler asks about the same incidents every tick: skip what is queued already in
        # one multi-get instead of rendering and refusing each email again.
        if self.hooks:
            made, _ = queue_webhooks(self.es, self.indices, self.hooks, notices, self.clock(),
                                     self._domain)  # fmt: skip
            report.webhooks += made
        queued = service.existing(self.es, self.indices, [mid for mid, _, _ in wanted])
        for mid, notice, recipient in wanted:
            if mid in queued:
                report.duplicates += 1
                continue
            queued.add(mid)
            self._queue(mid, notice, recipient, report, recent)
        service.refresh(self.es, self.indices)
        return report

    def _queue(
        self,
        mid: str,
        notice: IncidentNotice,
        recipient: Recipient,
        report: NotifyReport,
        recent: dict[str, int],
    ) -> None:
        validate_only_own_provinces(self.routes, recipient.address, [notice])
        now = self.clock()
        rendered = self.renderer.notice(notice, recipient)
        if recipient.address not in recent:
            recent[recipient.address] = self._recent(recipient, now)
        status = OutboxStatus.PENDING
        # Escalations are rare and exist to reach someone, and a high or critical incident must
        # reach its people now: only low and medium notices are ever held for a digest.
        over = recent[recipient.address] >= self.settings.notify_rate_limit
        if notice.event is not NoticeEvent.ESCALATION and not notice.urgent and over:
            status = OutboxStatus.HELD
        msg = OutboxMessage(
            message_id=mid,
            created=now,
            event=notice.event_key,
            incident_ids=(notice.incident_id,),
            province_codes=(notice.province_code,),
            recipient=recipient,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            status=status,
            next_attempt=now,
            notices=(notice,),
        )
        if not service.create(self.es, self.indices, msg):
            report.duplicates += 1
        elif status is OutboxStatus.HELD:
            report.held += 1
        else:
            report.queued += 1
            recent[recipient.address] += 1

    def _recent(self, recipient: Recipient, now: datetime, seconds: float | None = None) -> int:
        since = now - timedelta(seconds=seconds or self.settings.notify_rate_window)
        return service.count_recent(self.es, self.indices, recipient.address, since)

    def _digest_allowed(self, recipient: Recipient, now: datetime) -> bool:
        """Under the limit again, or nothing sent for window/limit seconds. The second condition
        bounds how long a held notice waits (10 minutes with the defaults) during a long storm,
        while the recipient still gets at most about ``limit`` digests per window."""
        s = self.settings
        if self._recent(recipient, now) < s.notify_rate_limit:
            return True
        return self._recent(recipient, now, s.notify_rate_window / s.notify_rate_limit) == 0

    def flush_digests(self) -> int:
        """One digest per recipient for its held messages, as soon as it may have one."""
        by_recipient: dict[str, list[service.Stored]] = defaultdict(list)
        service.refresh(self.es, self.indices)
        for stored in service.held(self.es, self.indices):
            by_recipient[stored.message.recipient.address].append(stored)
        made = 0
        now = self.clock()
        for group in by_recipient.values():
            recipient = group[0].message.recipient
            if not self._digest_allowed(recipient, now):
                continue
            self._digest(recipient, group, now)
            made += 1
        service.refresh(self.es, self.indices)
        return made

    def _digest(self, recipient: Recipient, group: Sequence[service.Stored], now: datetime) -> None:
        notices = [n for s in group for n in s.message.notices]
        validate_only_own_provinces(self.routes, recipient.address, notices)
        # The digest's id depends only on what it carries: a crash before the held messages are
        # marked makes the next flush rebuild the same digest, which the outbox refuses to double.
        members = "\x1f".join(sorted(s.message.message_id for s in group))
        key = "digest-" + hashlib.blake2b(members.encode(), digest_size=12).hexdigest()
        mid = message_id(key, "digest", recipient.address, self._domain)
        rendered = self.renderer.digest(notices, recipient)
        digest = OutboxMessage(
            message_id=mid,
            created=now,
            event="digest",
            incident_ids=tuple(dict.fromkeys(n.incident_id for n in notices)),
            province_codes=tuple(sorted({n.province_code for n in notices})),
            recipient=recipient,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            next_attempt=now,
        )
        service.create(self.es, self.indices, digest)
        for stored in group:
            service.update(
                self.es, self.indices, stored, status=OutboxStatus.DIGESTED, digest_id=mid
            )

    def send_pending(
        self, sender: Sender, limit: int = 200, channel: Channel = Channel.EMAIL
    ) -> SendReport:
        """Try every due message of the channel once (an :class:`SmtpSender` for emails, a
        :class:`~soc.notify.webhooks.WebhookSender` for webhooks); record sent, retry-later or
        failed for each, with the same retries, claims and limits."""
        report = SendReport()
        service.refresh(self.es, self.indices)
        due = service.due(self.es, self.indices, self.clock(), limit, channel)
        for position, stored in enumerate(due):
            down = self._send_one(sender, stored, report)
            if down is not None:
                # The server is down or silent: waiting a timeout per email would stall the tick,
                # so the rest of the batch is recorded as failed with the same cause and retried.
                for rest in due[position + 1 :]:
                    self._retry_later(rest, rest.message.attempts + 1, f"not tried: {down}", report)
                break
        service.refresh(self.es, self.indices)
        return report

    def _send_one(self, sender: Sender, stored: service.Stored, report: SendReport) -> str | None:
        """Send one message and record the outcome; the error if the server is unavailable."""
        now = self.clock()
        attempts = stored.message.attempts + 1
        claimed = service.update(
            self.es, self.indices, stored,
            status=OutboxStatus.SENDING, attempts=attempts,
            next_attempt=now + timedelta(seconds=CLAIM_SECONDS),
        )  # fmt: skip
        if claimed is None:
            report.skipped += 1
            return None
        mid = stored.message.message_id
        try:
            sender.send(claimed.message)
        except PermanentSmtpError as exc:
            service.update(self.es, self.indices, claimed, status=OutboxStatus.FAILED,
                           last_error=str(exc))  # fmt: skip
            report.failed += 1
            report.errors.append(f"{mid}: {exc}")
            log.warning("%s %s failed permanently: %s", stored.message.channel, mid, exc)
            return None
        except TransientSmtpError as exc:
            self._retry_later(claimed, attempts, str(exc), report)
            return str(exc) if isinstance(exc, SmtpUnavailable) else None
        service.update(self.es, self.indices, claimed, status=OutboxStatus.SENT, sent=now,
                       last_error=None)  # fmt: skip
        report.sent += 1
        return None

    def _retry_later(
        self, claimed: service.Stored, attempts: int, error: str, report: SendReport
    ) -> None:
        s = self.settings
        report.errors.append(f"{claimed.message.message_id}: {error}")
        if attempts >= s.notify_max_attempts:
            service.update(self.es, self.indices, claimed, status=OutboxStatus.FAILED,
                           attempts=attempts,
                           last_error=f"gave up after {attempts} attempts: {error}")  # fmt: skip
            report.failed += 1
            return
        delay = min(s.notify_retry_base * 2 ** (attempts - 1), s.notify_retry_max)
        service.update(
            self.es, self.indices, claimed, status=OutboxStatus.PENDING, last_error=error,
            attempts=attempts, next_attempt=self.clock() + timedelta(seconds=delay),
        )  # fmt: skip
        report.retrying += 1
