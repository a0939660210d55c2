"""The notifier's periodic job: look at incidents, queue the emails they call for, batch digests,
send what is due.

Thin on purpose: every step is a flow elsewhere, and every step is idempotent (stable Message-IDs,
compare-and-set updates), so a tick that dies half-way is simply finished by the next one. A
failing tick is logged and the next one runs; the outbox is the state, nothing lives in memory.
Incidents are read through ``soc.incidents.service`` only (it owns that index).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError

from soc.auth.models import Role, User
from soc.errors import SocError
from soc.es.indices import Indices
from soc.incidents import service as incidents
from soc.incidents.models import Incident, IncidentStatus
from soc.notify.adapter import notify_incidents
from soc.notify.flows import Notifier
from soc.notify.models import Channel
from soc.notify.smtp import SmtpSender
from soc.notify.webhooks import WebhookSender

log = logging.getLogger(__name__)

IncidentSource = Callable[[], Iterable[Incident]]
#: The notifier reads every province's incidents; it is not a person and has no session.
_NOTIFIER = User(name="soc-notifier", role=Role.ADMIN)


def incidents_to_check(es: Elasticsearch, indices: Indices, limit: int = 500) -> list[Incident]:
    """Open incidents (new, raised, escalating) and the latest resolved ones (their notices)."""
    es.indices.refresh(index=indices.incidents)
    open_now = incidents.IncidentFilter(open_only=True, size=limit)
    resolved = incidents.IncidentFilter(status=IncidentStatus.RESOLVED.value, size=limit)
    found = incidents.search(es, indices, open_now, user=_NOTIFIER).items
    found += incidents.search(es, indices, resolved, user=_NOTIFIER).items
    return found


def tick(notifier: Notifier, source: IncidentSource | None = None) -> None:
    """One round: incidents → outbox, digests, then every due email once."""
    try:
        notifier.reload_routes()
        queued = notify_incidents(notifier, source()) if source is not None else None
        digests = notifier.flush_digests()
        with SmtpSender(notifier.settings) as sender:
            report = notifier.send_pending(sender)
        if notifier.hooks:
            hooks = WebhookSender(notifier.hooks, notifier.settings.notify_webhook_timeout)
            posted = notifier.send_pending(hooks, channel=Channel.WEBHOOK)
            report.sent, report.retrying = (
                report.sent + posted.sent,
                report.retrying + posted.retrying,
            )
            report.failed += posted.failed
    except (SocError, ApiError, TransportError):
        # Elasticsearch away or a bad route: nothing is lost (the outbox is the state); retry.
        log.exception("notify tick failed; the next tick retries")
        return
    if queued is not None and (queued.queued or queued.held):
        log.info("notify: queued=%d held=%d", queued.queued, queued.held)
    if digests or report.sent or report.retrying or report.failed:
        log.info(
            "notify: digests=%d sent=%d retrying=%d failed=%d",
            digests, report.sent, report.retrying, report.failed,
        )  # fmt: skip


def register(scheduler: Any, notifier: Notifier, every_seconds: float = 15.0) -> None:
    """Add the notifier's job to an APScheduler scheduler (one at a time, coalesced, jittered)."""

    def source() -> list[Incident]:
        return incidents_to_check(notifier.es, notifier.indices)

    scheduler.add_job(
        tick,
        "interval",
        args=[notifier, source],
        seconds=every_seconds,
        id="notify-send",
        max_instances=1,
        coalesce=True,
        jitter=max(1.0, every_seconds / 10),
        replace_existing=True,
    )
