"""The status board: GREEN / YELLOW / RED per province and per commune, and its history.

The rule (also in docs/api.md):

* A **commune** is RED when an open incident of severity ``high`` or ``critical`` touches it (its
  own, or a parent incident listing it in ``ward_codes``), or when every health probe of it in the
  last ``status_probe_window`` seconds failed. It is YELLOW when any other open incident touches it
  or some of its probes failed. Otherwise GREEN.
* A **province** is RED when an open ``high``/``critical`` incident concerns the province as a
  whole (no commune: a parent, or a province-level system), or when every province-level probe
  failed. It is YELLOW when it has any open incident, any non-GREEN commune or a failed probe.
  Otherwise GREEN. ``green_ratio`` is the share of its communes that are GREEN.

A locality under an active maintenance window (``soc.incidents.silences``; a province-wide window
covers its communes) is flagged ``maintenance``: its colour still follows the rule, and the board
shows the flag next to it.

"Open" means new, acknowledged or investigating. The board is computed from two aggregation
queries (incidents, probe events), never from a cached copy, so it cannot drift from the
incidents. :func:`record_changes` stores one document per status change in ``<prefix>-state``.
This module must not change incidents.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from elasticsearch import Elasticsearch

from soc import timeutil
from soc.auth.models import User
from soc.es.indices import Indices
from soc.es.state import Entry, StateIndex, StateKind
from soc.incidents.models import OPEN_STATUSES
from soc.localities import catalogue

_SEVERE = ["critical", "high"]


class Colour(StrEnum):
    GREEN = "GREEN"
    YELLOW = "YELLOW"
    RED = "RED"


@dataclass(frozen=True)
class Signals:
    """What the rule looks at for one locality."""

    severe: int = 0
    other: int = 0
    probes: int = 0
    probes_down: int = 0

    def colour(self) -> Colour:
        if self.severe or (self.probes and self.probes_down == self.probes):
            return Colour.RED
        if self.other or self.probes_down:
            return Colour.YELLOW
        return Colour.GREEN


@dataclass(frozen=True)
class CommuneStatus:
    code: str
    name: str
    status: Colour
    open_incidents: int
    probes_down: int
    maintenance: bool = False


@dataclass(frozen=True)
class ProvinceStatus:
    code: str
    name: str
    status: Colour
    open_incidents: int
    communes: int
    communes_green: int
    communes_yellow: int
    communes_red: int
    maintenance: bool = False

    @property
    def green_ratio(self) -> float:
        return self.communes_green / self.communes if self.communes else 1.0


@dataclass(frozen=True)
class Board:
    provinces: list[ProvinceStatus]
    communes: dict[str, list[CommuneStatus]]


def board(
    es: Elasticsearch, indices: Indices, *, user: User, now: datetime, probe_window: float
) -> Board:
    """The board for the provinces ``user`` may see."""
    scope = user.province_scope()
    wards, provinces, open_counts = _incident_signals(es, indices, scope)
    probe_wards, probe_provinces = _probe_signals(es, indices, scope, now, probe_window)
    quiet_provinces, quiet_wards = _maintenance(es, indices, scope, now)
    result: list[ProvinceStatus] = []
    communes: dict[str, list[CommuneStatus]] = {}
    for p in catalogue().provinces:
        if scope is not None and p.code not in scope:
            continue
        rows = []
        for w in catalogue().wards_of(p):
            sig = _merge(wards.get(w.code), probe_wards.get(w.code))
            planned = p.code in quiet_provinces or w.code in quiet_wards
            rows.append(
                CommuneStatus(
                    w.code, w.name, sig.colour(), sig.severe + sig.other, sig.probes_down, planned
                )
            )
        communes[p.code] = rows
        own = _merge(provinces.get(p.code), probe_provinces.get(p.code))
        counts = {c: sum(1 for r in rows if r.status is c) for c in Colour}
        colour = own.colour()
        if colour is Colour.GREEN and (counts[Colour.RED] or counts[Colour.YELLOW]):
            colour = Colour.YELLOW
        total_open = open_counts.get(p.code, 0)
        result.append(
            ProvinceStatus(
                p.code,
                p.name,
                colour,
                total_open,
                len(rows),
                counts[Colour.GREEN],
                counts[Colour.YELLOW],
                counts[Colour.RED],
                p.code in quiet_provinces,
            )
        )
    return Board(result, communes)


def _maintenance(
    es: Elasticsearch, indices: Indices, scope: list[str] | None, now: datetime
) -> tuple[set[str], set[str]]:
    """Provinces and communes under a maintenance window active at ``now``."""
    from soc.incidents import silences  # incidents own the windows; the board only reads them

    active = [s for s in silences.current(es, indices, now, provinces=scope) if s.start <= now]
    provinces = {s.province_code for s in active if s.ward_code is None}
    wards = {s.ward_code for s in active if s.ward_code is not None}
    return provinces, wards


def _merge(inc: Signals | None, probe: Signals | None) -> Signals:
    a, b = inc or Signals(), probe or Signals()
    return Signals(a.severe, a.other, b.probes, b.probes_down)


def _incident_signals(
    es: Elasticsearch, indices: Indices, scope: list[str] | None
) -> tuple[dict[str, Signals], dict[str, Signals], dict[str, int]]:
    flt: list[dict[str, Any]] = [
        {"terms": {"incident.status": sorted(s.value for s in OPEN_STATUSES)}}
    ]
    if scope is not None:
        flt.append({"terms": {"locality.province.code": scope}})
    sev = {"severe": {"filter": {"terms": {"incident.severity": _SEVERE}}}}
    found = es.search(
        index=indices.incidents,
        size=0,
        query={"bool": {"filter": flt}},
        aggs={
            "ward": {"terms": {"field": "locality.ward.code", "size": 5000}, "aggs": sev},
            "listed": {"terms": {"field": "incident.ward_codes", "size": 5000}, "aggs": sev},
            "province": {
                "filter": {"bool": {"must_not": {"exists": {"field": "locality.ward.code"}}}},
                "aggs": {
                    "p": {"terms": {"field": "locality.province.code", "size": 100}, "aggs": sev}
                },
            },
            "open": {"terms": {"field": "locality.province.code", "size": 100}},
        },
    )
    aggs = found["aggregations"]
    wards: dict[str, Signals] = {}
    for name in ("ward", "listed"):
        for b in aggs[name]["buckets"]:
            old = wards.get(b["key"], Signals())
            severe = b["severe"]["doc_count"]
            wards[b["key"]] = Signals(old.severe + severe, old.other + b["doc_count"] - severe)
    # Province-level signals come only from incidents without a commune (parents, provincial
    # systems); commune incidents reach the province through its communes' colours.
    provinces = {
        b["key"]: Signals(b["severe"]["doc_count"], b["doc_count"] - b["severe"]["doc_count"])
        for b in aggs["province"]["p"]["buckets"]
    }
    open_counts = {b["key"]: int(b["doc_count"]) for b in aggs["open"]["buckets"]}
    return wards, provinces, open_counts


def _probe_signals(
    es: Elasticsearch, indices: Indices, scope: list[str] | None, now: datetime, window: float
) -> tuple[dict[str, Signals], dict[str, Signals]]:
    flt: list[dict[str, Any]] = [
        {"term": {"event.dataset": "probe.http"}},
        {
            "range": {
                "@timestamp": {
                    "gte": (now - timedelta(seconds=window)).isoformat(),
                    "lte": now.isoformat(),
                }
            }
        },
    ]
    if scope is not None:
        flt.append({"terms": {"locality.province.code": scope}})
    down = {"down": {"filter": {"term": {"soc.probe.up": False}}}}
    found = es.search(
        index=indices.events,
        size=0,
        allow_no_indices=True,
        ignore_unavailable=True,
        query={"bool": {"filter": flt}},
        aggs={
            "ward": {"terms": {"field": "locality.ward.code", "size": 5000}, "aggs": down},
            "province": {
                "filter": {"bool": {"must_not": {"exists": {"field": "locality.ward.code"}}}},
                "aggs": {
                    "p": {"terms": {"field": "locality.province.code", "size": 100}, "aggs": down}
                },
            },
        },
    )
    aggs = found.get("aggregations")
    if not aggs:
        return {}, {}
    wards = {
        b["key"]: Signals(probes=b["doc_count"], probes_down=b["down"]["doc_count"])
        for b in aggs["ward"]["buckets"]
    }
    provinces = {
        b["key"]: Signals(probes=b["doc_count"], probes_down=b["down"]["doc_count"])
        for b in aggs["province"]["p"]["buckets"]
    }
    return wards, provinces


def record_changes(es: Elasticsearch, indices: Indices, current: Board, now: datetime) -> int:
    """Store a change document for every locality whose colour changed; returns how many.

    The last recorded colour of each locality is one ``status-current`` document; a locality
    never recorded counts as GREEN, so only real changes become history.
    """
    state = StateIndex(es, indices)
    found = state.find(StateKind.STATUS_CURRENT, size=5000, refresh=True)
    before = {e.name: e.data["to"] for e in found}
    rows: list[tuple[str, str, str, Colour]] = [
        ("province", p.code, p.code, p.status) for p in current.provinces
    ]
    for code, communes in current.communes.items():
        rows.extend(("commune", c.code, code, c.status) for c in communes)
    entries: list[Entry] = []
    stamp = now.isoformat()
    for level, code, province, colour in rows:
        was = before.get(f"{level}:{code}", Colour.GREEN.value)
        if was == colour.value:
            continue
        data = {"level": level, "code": code, "province": province, "from": was, "to": colour.value}
        entries += [
            Entry(StateKind.STATUS_CURRENT, f"{level}:{code}", data, now, province, owner=code),
            Entry(StateKind.STATUS_CHANGE, f"{level}:{code}:{stamp}", data, now, province, code),
        ]
    return state.put_many(entries, refresh=True) // 2


def history(
    es: Elasticsearch, indices: Indices, *, user: User, province: str | None, size: int
) -> list[dict[str, Any]]:
    """Status changes, newest first, within the caller's provinces."""
    flt: list[dict[str, Any]] = []
    scope = user.province_scope()
    if scope is not None:
        flt.append({"terms": {"key": scope}})
    if province is not None:
        flt.append({"term": {"key": province}})
    found = StateIndex(es, indices).find(
        StateKind.STATUS_CHANGE, *flt, sort=[{"updated": "desc"}], size=size
    )
    return [dict(e.data, at=timeutil.iso(e.updated)) for e in found]
