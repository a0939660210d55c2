"""The one writer of detectors' alerts into ``<prefix>-alerts``: create once, or settle a final one.

Every detector (Sigma, correlation, anomaly) hands its :class:`soc.alerts.models.Alert` values
here. An alert's ``_id`` is deterministic, so :func:`create` writes each one with
``op_type=create``: an alert already stored (409) is counted as existing, never doubled or
overwritten. :func:`settle` is the Sigma engine's final evaluation of a window an early search
already alerted on: it upserts, bringing count, summary and evidence to the final values while
leaving creation time, status, incident and triage alone. Any other refusal raises
:class:`soc.errors.AlertWriteError` naming the alert. Triage updates belong to
``soc.alerts.service``; this module must not read alerts nor know about detectors.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from elasticsearch import Elasticsearch, helpers

from soc.alerts.models import Alert
from soc.errors import AlertWriteError
from soc.es.indices import Indices


class Written(NamedTuple):
    """How many alerts a write stored anew and how many were already there (same id)."""

    created: int
    existing: int


def create(
    es: Elasticsearch, indices: Indices, alerts: Sequence[Alert], *, refresh: bool = False
) -> Written:
    """Create each alert once; one already stored under its id is counted, not overwritten.

    ``refresh``: make them searchable before returning (the anomaly detector's runs do).
    """
    if not alerts:
        return Written(0, 0)
    actions = ({"_op_type": "create", "_index": indices.alerts, "_id": a.id,
                "_source": a.to_doc()} for a in alerts)  # fmt: skip
    written = _bulk(es, actions)
    if refresh:
        es.indices.refresh(index=indices.alerts)
    return written


def settle(es: Elasticsearch, indices: Indices, alerts: Sequence[Alert]) -> Written:
    """Upsert each alert's final count, summary and evidence; created if no early write did."""
    return _bulk(es, (_final(a, indices) for a in alerts)) if alerts else Written(0, 0)


def _final(alert: Alert, indices: Indices) -> dict[str, Any]:
    doc = alert.to_doc()
    final = {"alert": {"count": doc["alert"]["count"], "summary": doc["alert"]["summary"]},
             "evidence": doc["evidence"]}  # fmt: skip
    return {"_op_type": "update", "_index": indices.alerts, "_id": alert.id, "doc": final,
            "upsert": doc, "retry_on_conflict": 3}  # fmt: skip


def _bulk(es: Elasticsearch, actions: Iterable[dict[str, Any]]) -> Written:
    created = existing = 0
    for ok, item in helpers.streaming_bulk(es, actions, raise_on_error=False, max_retries=3):
        ((_op, result),) = item.items()
        if ok and result.get("result") == "created":
            created += 1
        elif ok or result.get("status") == 409:
            existing += 1
        else:
            raise AlertWriteError(str(result.get("_id")), str(result.get("error")))
    return Written(created, existing)
