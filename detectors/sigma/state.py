"""The detection engine's documents in ``<prefix>-state``: per-rule checkpoints and health, the
administrators' tuning of each rule, and the lease that keeps a second ``soc detect`` on standby.

Documents go through :class:`soc.es.state.StateIndex` (ids ``detect.<kind>:<rule id>``); this
module owns the shape of their ``data``. Checkpoints are written
only after a window's alerts are stored, so a crash re-runs the window (alert ids are
deterministic, so nothing doubles) instead of skipping it. This module must not search events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from detectors.base import iso
from detectors.sigma.search import Exception_, Tuning
from soc import timeutil
from soc.es.indices import Indices
from soc.es.state import Entry, StateIndex, StateKind

CHECKPOINT = StateKind.DETECT_CHECKPOINT
TUNING = StateKind.DETECT_TUNING
LEASE = StateKind.DETECT_LEASE
_parse = timeutil.parse


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

    def to_entry(self, now: datetime) -> Entry:
        data = {
            "done_until": iso(self.done_until) if self.done_until else None,
            "last_run": iso(self.last_run) if self.last_run else None,
            "duration_ms": self.duration_ms,
            "error": self.error,
            "windows": self.windows,
            "alerts": self.alerts,
            "behind": self.behind,
        }
        return Entry(CHECKPOINT, self.rule_id, data, now)

    @classmethod
    def from_entry(cls, rule_id: str, entry: Entry | None) -> Checkpoint:
        if entry is None:
            return cls(rule_id)
        data = entry.data
        return cls(
            rule_id=rule_id,
            done_until=_parse(data["done_until"]) if data.get("done_until") else None,
            last_run=_parse(data["last_run"]) if data.get("last_run") else None,
            duration_ms=float(data.get("duration_ms", 0.0)),
            error=data.get("error"),
            windows=int(data.get("windows", 0)),
            alerts=int(data.get("alerts", 0)),
            behind=int(data.get("behind", 0)),
        )


class StateStore:
    """Reads and writes the engine's documents; nothing else touches them."""

    def __init__(self, es: Elasticsearch, indices: Indices) -> None:
        self.state = StateIndex(es, indices)

    # ------------------------------------------------------------------ checkpoints
    def checkpoints(self, rule_ids: Iterable[str]) -> dict[str, Checkpoint]:
        ids = list(rule_ids)
        found = self.state.get_many(CHECKPOINT, ids)
        return {rid: Checkpoint.from_entry(rid, found.get(rid)) for rid in ids}

    def save_checkpoints(self, checkpoints: Iterable[Checkpoint], now: datetime) -> None:
        self.state.put_many(cp.to_entry(now) for cp in checkpoints)

    # ------------------------------------------------------------------ tuning
    def tunings(self, rule_ids: Iterable[str]) -> dict[str, Tuning]:
        found = self.state.get_many(TUNING, rule_ids)
        return {rid: _tuning(entry.data) for rid, entry in found.items()}

    def tuning(self, rule_id: str) -> Tuning:
        return self.tunings([rule_id]).get(rule_id, Tuning())

    def save_tuning(self, rule_id: str, tuning: Tuning, by: str) -> None:
        exceptions = [
            {
                "field": e.field,
                "value": e.value,
                "reason": e.reason,
                "author": e.author,
                "expires": iso(e.expires),
            }
            for e in tuning.exceptions
        ]
        data = {
            "enabled": tuning.enabled,
            "thresholds": {code: count for code, count in tuning.thresholds},
            "exceptions": exceptions,
        }
        entry = Entry(TUNING, rule_id, data, datetime.now(UTC), owner=by)
        self.state.put(entry, refresh=True)

    # ------------------------------------------------------------------ lease
    def acquire_lease(self, owner: str, ttl: timedelta, now: datetime | None = None) -> bool:
        """Take or renew the single ``soc detect`` lease; False while another owner holds it."""
        now = now or datetime.now(UTC)
        lease = Entry(LEASE, "detect", {}, now, owner=owner, expires=now + ttl)
        held = self.state.get(LEASE, "detect")
        if held is None or held.version is None:
            return self.state.create(lease, refresh=True)
        if held.owner != owner and held.expires is not None and held.expires > now:
            return False
        return self.state.replace(lease, held.version, refresh=True)

    def release_lease(self, owner: str) -> None:
        held = self.state.get(LEASE, "detect")
        if held is not None and held.owner == owner:
            self.state.delete(LEASE, "detect", read=held.version, refresh=True)


def _tuning(data: dict[str, Any]) -> Tuning:
    return Tuning(
        enabled=bool(data.get("enabled", True)),
        thresholds=tuple(sorted((str(k), int(v)) for k, v in data.get("thresholds", {}).items())),
        exceptions=tuple(
            Exception_(
                field=e["field"],
                value=e["value"],
                reason=e["reason"],
                author=e["author"],
                expires=_parse(e["expires"]),
            )
            for e in data.get("exceptions", [])
        ),
    )
