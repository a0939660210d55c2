"""The outbox: the only code that reads and writes ``<prefix>-outbox``.

Every email is created here (``op_type=create``, ``_id`` derived from its stable ``Message-ID``)
before any SMTP call, so a retry, a restart or a second notifier never queues it twice. Every
change of status is a compare-and-set on ``if_seq_no``/``if_primary_term``: two senders never both
claim one email. This module must not render, route or talk SMTP.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from elasticsearch import ConflictError, Elasticsearch, NotFoundError

from soc.alerts.models import Severity
from soc.es.indices import Indices
from soc.localities import catalogue
from soc.notify.models import Channel, OutboxMessage, OutboxStatus

log = logging.getLogger(__name__)

#: What a (rate-limited) recipient has received: everything except emails waiting for a digest.
_COUNTED = [s.value for s in OutboxStatus if s not in (OutboxStatus.HELD, OutboxStatus.DIGESTED)]


@dataclass(frozen=True)
class Stored:
    """An outbox message with the version it was read at (for compare-and-set updates)."""

    message: OutboxMessage
    seq_no: int
    primary_term: int


def doc_id(message_id: str) -> str:
    """The ``_id`` of a message: its Message-ID without the angle brackets."""
    return message_id.strip("<>")


def _to_doc(msg: OutboxMessage) -> dict[str, Any]:
    return {
        "@timestamp": msg.created.isoformat(),
        "message_id": msg.message_id,
        "incident": {"id": list(msg.incident_ids)},
        "notification": {
            "event": msg.event,
            "language": msg.recipient.language.value,
            "channel": msg.channel.value,
        },
        "province_codes": list(msg.province_codes),
        "recipients": [msg.recipient.address],
        "subject": msg.subject,
        "status": msg.status.value,
        "attempts": msg.attempts,
        "next_attempt": msg.next_attempt.isoformat(),
        "sent": msg.sent.isoformat() if msg.sent else None,
        "last_error": msg.last_error,
        "body": msg.model_dump(
            mode="json",
            include={"recipient", "text", "html", "digest_id", "notices", "channel", "webhook"},
        ),
    }


def _from_hit(hit: dict[str, Any]) -> Stored:
    src = hit["_source"]
    body = src["body"]
    msg = OutboxMessage.model_validate(
        {
            "message_id": src["message_id"],
            "created": src["@timestamp"],
            "event": src["notification"]["event"],
            "incident_ids": src["incident"]["id"],
            "province_codes": src["province_codes"],
            "subject": src["subject"],
            "status": src["status"],
            "attempts": src["attempts"],
            "next_attempt": src["next_attempt"],
            "sent": src.get("sent"),
            "last_error": src.get("last_error"),
            **body,
        }
    )
    return Stored(msg, int(hit["_seq_no"]), int(hit["_primary_term"]))


def create(es: Elasticsearch, indices: Indices, msg: OutboxMessage) -> bool:
    """Queue a message; False when one with this Message-ID is already queued (or sent)."""
    try:
        es.index(
            index=indices.outbox,
            id=doc_id(msg.message_id),
            document=_to_doc(msg),
            op_type="create",
        )
    except ConflictError:
        return False
    return True


def refresh(es: Elasticsearch, indices: Indices) -> None:
    """Make every write so far visible to searches: once per batch, never per message (a refresh
    per write made queueing 30 times slower on a busy node)."""
    es.indices.refresh(index=indices.outbox)


def existing(es: Elasticsearch, indices: Indices, message_ids: Iterable[str]) -> set[str]:
    """Which of these Message-IDs are already in the outbox (one real-time multi-get)."""
    wanted = {doc_id(m): m for m in message_ids}
    if not wanted:
        return set()
    resp = es.mget(index=indices.outbox, ids=list(wanted), source=False)
    return {wanted[d["_id"]] for d in resp["docs"] if d.get("found")}


@dataclass(frozen=True)
class Notified:
    """What one email already told about an incident: its severity and how many communes."""

    severity: Severity
    wards: int


def notified(
    es: Elasticsearch, indices: Indices, incident_ids: Sequence[str]
) -> dict[str, list[Notified]]:
    """What the emails queued for each incident so far said (severity, communes)."""
    if not incident_ids:
        return {}
    resp = es.search(
        index=indices.outbox,
        query={"terms": {"incident.id": list(incident_ids)}},
        source_includes=[
            "body.notices.incident_id", "body.notices.severity", "body.notices.wards.code",
        ],
        size=10_000,
    )  # fmt: skip
    found: dict[str, list[Notified]] = defaultdict(list)
    for hit in resp["hits"]["hits"]:
        for notice in hit["_source"].get("body", {}).get("notices", []):
            told = Notified(Severity(notice["severity"]), len(notice.get("wards") or ()))
            found[notice["incident_id"]].append(told)
    return dict(found)


def get(es: Elasticsearch, indices: Indices, message_id: str) -> Stored | None:
    try:
        found = es.get(index=indices.outbox, id=doc_id(message_id))
    except NotFoundError:
        return None
    return _from_hit(dict(found))


def update(es: Elasticsearch, indices: Indices, stored: Stored, **changes: Any) -> Stored | None:
    """Compare-and-set: write ``changes`` unless someone else changed the message first."""
    new = stored.message.model_copy(update=changes)
    try:
        resp = es.index(
            index=indices.outbox,
            id=doc_id(new.message_id),
            document=_to_doc(new),
            if_seq_no=stored.seq_no,
            if_primary_term=stored.primary_term,
        )
    except ConflictError:
        log.info("outbox message %s changed under us; left to its new owner", new.message_id)
        return None
    return Stored(new, int(resp["_seq_no"]), int(resp["_primary_term"]))


def _search(es: Elasticsearch, indices: Indices, query: dict[str, Any], size: int) -> list[Stored]:
    resp = es.search(
        index=indices.outbox,
        query=query,
        size=size,
        sort=[{"next_attempt": "asc"}, {"message_id": "asc"}],
        seq_no_primary_term=True,
    )
    return [_from_hit(dict(hit)) for hit in resp["hits"]["hits"]]


def due(
    es: Elasticsearch, indices: Indices, now: datetime, limit: int = 200,
    channel: Channel = Channel.EMAIL,
) -> list[Stored]:  # fmt: skip
    """Messages of one channel to (re)try now: pending ones whose time has come, and expired
    claims. Messages stored before channels existed are emails."""
    webhook = {"term": {"notification.channel": Channel.WEBHOOK.value}}
    query: dict[str, Any] = {
        "bool": {
            "filter": [
                {"terms": {"status": [OutboxStatus.PENDING.value, OutboxStatus.SENDING.value]}},
                {"range": {"next_attempt": {"lte": now.isoformat()}}},
            ]
        }
    }
    if channel is Channel.WEBHOOK:
        query["bool"]["filter"].append(webhook)
    else:
        query["bool"]["must_not"] = [webhook]
    return _search(es, indices, query, limit)


def held(es: Elasticsearch, indices: Indices, limit: int = 1000) -> list[Stored]:
    """Messages waiting for a digest, oldest first."""
    query = {"bool": {"filter": [{"term": {"status": OutboxStatus.HELD.value}}]}}
    found = _search(es, indices, query, limit)
    return sorted(found, key=lambda s: (s.message.created, s.message.message_id))


def count_recent(es: Elasticsearch, indices: Indices, address: str, since: datetime) -> int:
    """Emails queued for one recipient since ``since`` that count towards its rate limit."""
    resp = es.count(
        index=indices.outbox,
        query={
            "bool": {
                "filter": [
                    {"term": {"recipients": address}},
                    {"terms": {"status": _COUNTED}},
                    {"range": {"@timestamp": {"gte": since.isoformat()}}},
                ]
            }
        },
    )
    return int(resp["count"])


def listing(
    es: Elasticsearch,
    indices: Indices,
    *,
    status: OutboxStatus | None = None,
    incident_id: str | None = None,
    provinces: list[str] | None = None,
    limit: int = 100,
) -> list[Stored]:
    """Messages for people to look at (failures first of all), filtered by status / incident.

    ``provinces`` (a caller's scope) keeps only emails *all* of whose provinces are in it: a
    digest naming Hà Nội and Huế is shown to neither province's team, since it would reveal the
    other's incidents and recipients. An email naming no province is not shown to a scope."""
    filters: list[dict[str, Any]] = []
    must_not: list[dict[str, Any]] = []
    if provinces is not None:
        filters.append({"terms": {"province_codes": provinces}})
        # "Every value in scope" on a multi-valued field: no value among the other provinces.
        others = sorted({p.code for p in catalogue().provinces} - set(provinces))
        must_not.append({"terms": {"province_codes": others}})
    if status is not None:
        filters.append({"term": {"status": status.value}})
    if incident_id is not None:
        filters.append({"term": {"incident.id": incident_id}})
    return _search(es, indices, {"bool": {"filter": filters, "must_not": must_not}}, limit)
