"""The detection engine's documents in ``<prefix>-state``: per-rule checkpoints and health, the
administrators' tuning of each rule, and the lease that keeps a second ``soc detect`` on standby.

Document ids are ``detect.<kind>:<key>``; the ``kind`` field says which. Checkpoints are written
only after a window's alerts are stored, so a crash re-runs the window (alert ids are
deterministic, so nothing doubles) instead of skipping it. This module must not search events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import ConflictError, Elasticsearch, NotFoundError

from detectors.base import iso
from detectors.sigma.search import Exception_, Tuning
from soc import timeutil
from soc.es.indices import Indices

CHECKPOINT = "detect.checkpoint"
TUNING = "detect.tuning"
LEASE = "detect.lease"


def _id(kind: str, key: str) -> str:
    return f"{kind}:{key}"


def _parse(text: str) -> datetime:
    return timeutil.parse(text)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where a rule stands: every window ending at or before ``done_until`` is evaluated."""

    rule_id: str
    done_until: datetime | None = None
    last_run: datetime | None = None
    duration_ms: float = 0.0
    error: str | None = None
    windows: int = 0
    alerts: int = 0
    behind: int = 0

    def to_doc(self, now: datetime) -> dict[str, Any]:
        data = {
            "done_until": iso(self.done_until) if self.done_until else None,
            "last_run": iso(self.last_run) if self.last_run else None,
            "duration_ms": self.duration_ms, "error": self.error, "windows": self.windows,
            "alerts": self.alerts, "behind": self.behind,
        }  # fmt: skip
        return {"kind": CHECKPOINT, "key": self.rule_id, "updated": iso(now), "data": data}

    @classmethod
    def from_doc(cls, rule_id: str, doc: dict[str, Any] | None) -> Checkpoint:
        if not doc:
            return cls(rule_id)
        data = doc.get("data", {})
        return cls(
            rule_id=rule_id,
            done_until=_parse(data["done_until"]) if data.get("done_until") else None,
            last_run=_parse(data["last_run"]) if data.get("last_run") else None,
            duration_ms=float(data.get("duration_ms", 0.0)), error=data.get("error"),
            windows=int(data.get("windows", 0)), alerts=int(data.get("alerts", 0)),
            behind=int(data.get("behind", 0)),
        )  # fmt: skip


class StateStore:
    """Reads and writes the engine's documents; nothing else touches them."""

    def __init__(self, es: Elasticsearch, indices: Indices) -> None:
        self.es = es
        self.index = indices.state

    def _mget(self, kind: str, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        ids = [_id(kind, k) for k in keys]
        if not ids:
            return {}
        answer = self.es.mget(index=self.index, ids=ids)
        return {d["_source"]["key"]: d["_source"] for d in answer["docs"] if d.get("found")}

    # ------------------------------------------------------------------ checkpoints
    def checkpoints(self, rule_ids: Iterable[str]) -> dict[str, Checkpoint]:
        ids = list(rule_ids)
        found = self._mget(CHECKPOINT, ids)
        return {rid: Checkpoint.from_doc(rid, found.get(rid)) for rid in ids}

    def save_checkpoints(self, checkpoints: Iterable[Checkpoint], now: datetime) -> None:
        operations: list[dict[str, Any]] = []
        for cp in checkpoints:
            operations.append({"index": {"_index": self.index, "_id": _id(CHECKPOINT, cp.rule_id)}})
            operations.append(cp.to_doc(now))
        if operations:
            self.es.bulk(operations=operations)

    # ------------------------------------------------------------------ tuning
    def tunings(self, rule_ids: Iterable[str]) -> dict[str, Tuning]:
        found = self._mget(TUNING, rule_ids)
        return {rid: _tuning(doc["data"]) for rid, doc in found.items()}

    def tuning(self, rule_id: str) -> Tuning:
        return self.tunings([rule_id]).get(rule_id, Tuning())

    def save_tuning(self, rule_id: str, tuning: Tuning, by: str) -> None:
        data = {
            "enabled": tuning.enabled,
            "thresholds": {code: count for code, count in tuning.thresholds},
            "exceptions": [
                {"field": e.field, "value": e.value, "reason": e.reason, "author": e.author,
                 "expires": iso(e.expires)} for e in tuning.exceptions
            ],
        }  # fmt: skip
        now = datetime.now(UTC)
        doc = {"kind": TUNING, "key": rule_id, "owner": by, "updated": iso(now), "data": data}
        self.es.index(index=self.index, id=_id(TUNING, rule_id), document=doc, refresh=True)

    # ------------------------------------------------------------------ lease
    def acquire_lease(self, owner: str, ttl: timedelta, now: datetime | None = None) -> bool:
        """Take or renew the single ``soc detect`` lease; False while another owner holds it."""
        now = now or datetime.now(UTC)
        doc = {"kind": LEASE, "key": "detect", "owner": owner, "updated": iso(now),
               "expires": iso(now + ttl), "data": {}}  # fmt: skip
        lease_id = _id(LEASE, "detect")
        try:
            current = self.es.get(index=self.index, id=lease_id)
        except NotFoundError:
            try:
                self.es.create(index=self.index, id=lease_id, document=doc, refresh=True)
                return True
            except ConflictError:
                return False
        held = current["_source"]
        if held.get("owner") != owner and _parse(held["expires"]) > now:
            return False
        try:
            self.es.index(
                index=self.index,
                id=lease_id,
                document=doc,
                refresh=True,
                if_seq_no=current["_seq_no"],
                if_primary_term=current["_primary_term"],
            )
        except ConflictError:
            return False
        return True

    def release_lease(self, owner: str) -> None:
        lease_id = _id(LEASE, "detect")
        try:
            current = self.es.get(index=self.index, id=lease_id)
        except NotFoundError:
            return
        if current["_source"].get("owner") == owner:
            self.es.options(ignore_status=(404, 409)).delete(
                index=self.index, id=lease_id, if_seq_no=current["_seq_no"],
                if_primary_term=current["_primary_term"], refresh=True,
            )  # fmt: skip


def _tuning(data: dict[str, Any]) -> Tuning:
    return Tuning(
        enabled=bool(data.get("enabled", True)),
        thresholds=tuple(sorted((str(k), int(v)) for k, v in data.get("thresholds", {}).items())),
        exceptions=tuple(
            Exception_(field=e["field"], value=e["value"], reason=e["reason"], author=e["author"],
                       expires=_parse(e["expires"])) for e in data.get("exceptions", [])
        ),
    )  # fmt: skip
