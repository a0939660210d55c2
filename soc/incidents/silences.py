"""Maintenance windows (silences): planned work on one service, or all, at one province or commune.

An admin, an analyst or the province's own IT declares one (start, end, reason). While it is
active, detection still runs and records, and grouping still makes incidents, but every incident
it covers is marked ``maintenance`` (with the silence's id and end) and nobody is emailed for it.
A silence expires by itself at its end; ending it early sets its end to now. Each one is a small
document (``kind: incident-silence``) in ``<prefix>-state``, whose indexed ``expires`` field is the
end, and every declaration and early end is audited by the caller (``soc.incidents.silence_views``).
This module stores and matches silences; it decides nothing about who may declare them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from soc.alerts.models import Alert
from soc.errors import NotFound
from soc.es.indices import Indices
from soc.es.state import Entry, StateIndex, StateKind


class Silence(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    province_code: str = Field(pattern=r"^[0-9]{2}$")
    ward_code: str | None = Field(default=None, pattern=r"^[0-9]{5}$")
    service: str | None = None
    start: AwareDatetime
    end: AwareDatetime
    reason: str = Field(min_length=1, max_length=2000)
    created_by: str
    created: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> Silence:
        if self.end <= self.start:
            raise ValueError("a maintenance window must end after it starts")
        return self

    def covers(self, province: str, ward: str | None, service: str | None, at: datetime) -> bool:
        """Whether an alert of ``service`` at this place and time falls in this window."""
        if not self.start <= at < self.end or province != self.province_code:
            return False
        if self.ward_code is not None and ward != self.ward_code:
            return False
        return self.service is None or service == self.service


def _entry(silence: Silence) -> Entry:
    data, province = silence.model_dump(mode="json"), silence.province_code
    return Entry(
        StateKind.SILENCE, silence.id, data, silence.created, province, expires=silence.end
    )


def create(es: Elasticsearch, indices: Indices, silence: Silence) -> Silence:
    StateIndex(es, indices).put(_entry(silence), refresh=True)
    return silence


def get(es: Elasticsearch, indices: Indices, silence_id: str) -> Silence:
    found = StateIndex(es, indices).get(StateKind.SILENCE, silence_id)
    if found is None:
        raise NotFound(f"no maintenance window {silence_id!r}")
    return Silence.model_validate(found.data)


def end_now(es: Elasticsearch, indices: Indices, silence: Silence, now: datetime) -> Silence | None:
    """End a window early (its end only moves back); a window not yet begun is withdrawn (None)."""
    if now <= silence.start:
        StateIndex(es, indices).delete(StateKind.SILENCE, silence.id, refresh=True)
        return None
    return create(es, indices, silence.model_copy(update={"end": min(silence.end, now)}))


def current(
    es: Elasticsearch, indices: Indices, now: datetime, *, provinces: list[str] | None = None
) -> list[Silence]:
    """Windows that have not ended at ``now`` (active or planned), within ``provinces``."""
    filters: list[dict[str, Any]] = [{"range": {"expires": {"gt": now.isoformat()}}}]
    if provinces is not None:
        filters.append({"terms": {"key": provinces}})
    found = StateIndex(es, indices).find(StateKind.SILENCE, *filters)
    return [Silence.model_validate(e.data) for e in found]


def covering(silences: list[Silence], alert: Alert) -> Silence | None:
    """The window an alert falls in (the one ending last), or None."""
    place = alert.place
    if place is None:
        return None
    hits = [
        s
        for s in silences
        if s.covers(place.province_code, place.ward_code, alert.service, alert.created)
    ]
    return max(hits, key=lambda s: s.end) if hits else None
