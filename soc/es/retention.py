"""The daily event indices' life: created a day ahead, deleted whole when older than kept.

A daily index made by its first event (just after 00:00 UTC) has no started replica for its
first seconds, and a node lost then leaves it red; :func:`create_next_day` (a job of ``soc
pipeline``) makes tomorrow's index hours before, so its replica is started when data arrives.

Retention: events live in ``<prefix>-events-YYYY.MM.DD`` (the event's UTC day), so retention is one
``DELETE`` per expired day: no delete-by-query, nothing to merge away. Only event indices are
touched; alerts, incidents, the outbox and the audit trail are kept (they are small and are the
record). Each index is named explicitly (clusters refuse wildcard deletes by default).
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from elasticsearch import Elasticsearch

from soc.es.indices import Indices


def expired(es: Elasticsearch, indices: Indices, keep_days: int, today: date) -> list[str]:
    """The daily event indices whose day is more than ``keep_days`` before ``today``, oldest
    first; today's index and the ``keep_days`` before it stay."""
    day_re = re.compile(rf"^{re.escape(indices.prefix)}-events-(\d{{4}})\.(\d{{2}})\.(\d{{2}})$")
    oldest_kept = today - timedelta(days=keep_days)
    names = es.indices.get(index=indices.events, allow_no_indices=True, expand_wildcards="open")
    out = []
    for name in sorted(names):
        found = day_re.match(name)
        if found and date(*map(int, found.groups())) < oldest_kept:
            out.append(name)
    return out


def delete(es: Elasticsearch, names: list[str]) -> None:
    for name in names:
        es.options(ignore_status=404).indices.delete(index=name)


def create_next_day(es: Elasticsearch, indices: Indices, today: date) -> bool:
    """Create tomorrow's event index from its template unless it exists; True if created."""
    name = indices.events_for(today + timedelta(days=1))
    if es.indices.exists(index=name):
        return False
    answer = es.options(ignore_status=400).indices.create(index=name)
    return bool(answer.get("acknowledged"))  # 400: created meanwhile by a collector or peer
