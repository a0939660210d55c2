"""The notifier's periodic jobs: batch digests, then send what is due, every few seconds.

Thin on purpose: each tick builds nothing new, calls :meth:`Notifier.flush_digests` and
:meth:`Notifier.send_pending`, and logs the outcome; a failing tick is logged and the next one
runs. Escalations need incidents, so whoever owns the incident scheduler calls
:func:`soc.notify.flows.escalations_due` and :meth:`Notifier.notify` (see docs/notify.md).
"""

from __future__ import annotations

import logging
from typing import Any

from elasticsearch import ApiError, TransportError

from soc.errors import SocError
from soc.notify.flows import Notifier
from soc.notify.smtp import SmtpSender

log = logging.getLogger(__name__)


def tick(notifier: Notifier) -> None:
    """One round: digests first (so they go out in this round), then every due email once."""
    try:
        digests = notifier.flush_digests()
        with SmtpSender(notifier.settings) as sender:
            report = notifier.send_pending(sender)
    except (SocError, ApiError, TransportError):
        # Elasticsearch away or a bad route: nothing was lost (the outbox is the state); retry.
        log.exception("notify tick failed; the next tick retries")
        return
    if digests or report.sent or report.retrying or report.failed:
        log.info(
            "notify: digests=%d sent=%d retrying=%d failed=%d",
            digests, report.sent, report.retrying, report.failed,
        )  # fmt: skip


def register(scheduler: Any, notifier: Notifier, every_seconds: float = 15.0) -> None:
    """Add the notifier's job to an APScheduler scheduler (one at a time, coalesced, jittered)."""
    scheduler.add_job(
        tick,
        "interval",
        args=[notifier],
        seconds=every_seconds,
        id="notify-send",
        max_instances=1,
        coalesce=True,
        jitter=max(1.0, every_seconds / 10),
        replace_existing=True,
    )
