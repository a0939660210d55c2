"""The values the Sigma searches share: a rule's tuning, its findings, the parts of its search,
and the typed answers of every search strategy (:class:`Answer`: places or sliding windows).

Elasticsearch's replies are read into these types where they arrive (``answers``, ``scan``,
``counting``); nothing past them handles a reply's dictionaries. No behaviour beyond the types.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from detectors.base import Window
from detectors.sigma.condition import Node
from detectors.sigma.models import Condition

NONE = "__none__"


SAMPLES = 5


GROUP_SIZE = 1000


#: Matching events of one window read by a scan (``scan``); above, per-rule aggregations.
SCAN_LIMIT = 5000


#: Read from doc values, not ``_source``: loading stored ``_source`` for the samples of hundreds
#: of rules was the largest cost of a cycle (bench/reports/detect-cycle.md).
SAMPLE_FIELDS = ["locality.province.code", "locality.ward.code", "service.name", "source.ip",
                  "user.name", "error.type", "host.name", "host.ip"]  # fmt: skip


#: Distinct values of a ``value_count`` correlation named on its alert (accounts, IPs).
VALUE_NAMES = 20


#: The failure class of an event (soc/events/failures.py): a correlation counts its findings'.
CLASS_FIELD = "error.type"


@dataclass(frozen=True, slots=True)
class Exception_:
    """Suppress a rule's matches where ``field`` equals ``value`` until ``expires``."""

    field: str
    value: str
    reason: str
    author: str
    expires: datetime


@dataclass(frozen=True, slots=True)
class Tuning:
    """Administrator's settings for one rule (``soc rules enable/disable/threshold/except``)."""

    enabled: bool = True
    thresholds: tuple[tuple[str, int], ...] = ()
    exceptions: tuple[Exception_, ...] = ()

    def threshold_for(self, province: str | None, default: Condition) -> Condition:
        for code, count in self.thresholds:
            if code == province:
                return default.with_count(count)
        return default

    def active_exceptions(self, at: datetime) -> list[Exception_]:
        return [e for e in self.exceptions if e.expires > at]


@dataclass(frozen=True, slots=True)
class Finding:
    """One alertable result: a group of events of a rule in a window."""

    window: Window
    group: Mapping[str, str]
    count: int
    samples: tuple[Mapping[str, Any], ...]
    #: A correlation finding whose samples are still to be read (``bodies.sample_body``): the
    #: ``@timestamp`` range of the sub-window that gave its count.
    span: tuple[str, str] | None = None
    #: A correlation finding's sub-window (``@timestamp`` range), samples read or not.
    slide: tuple[str, str] | None = None
    #: Events counted in that sub-window (``count`` is the distinct values of a value_count).
    events: int = 0
    #: The time of the first of them (epoch milliseconds), where the ratio test starts.
    first: float | None = None
    #: What the alert explains beyond the count: a value_count's distinct values, the communes
    #: met, a ratio rule's test (detectors/sigma/ratio.py).
    detail: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Options:
    """How far back the searches reach (settings ``SOC_DETECT_*``)."""

    lookback: timedelta = timedelta(days=1)
    correlation_lookback: timedelta = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class Parts:
    """A rule's search split in three: the time scope (shared by rules over the same window and
    sliding ranges, so they can share one search: ``batch``), the rule's own filter, its aggs."""

    key: tuple[Any, ...]
    scope: tuple[dict[str, Any], ...]
    match: dict[str, Any]
    aggs: dict[str, Any]
    ranges: tuple[dict[str, str], ...] = ()
    #: A plain rule's Lucene query.
    query: str = ""
    #: Its condition tree when no exception applies: a scan may then share its parts.
    tree: Node | None = None
    #: A correlation group with fewer events cannot fire (``min_doc_count`` of its terms).
    minimum: int = 1


@dataclass(frozen=True, slots=True)
class Place:
    """A plain rule's events of one province and ward (a key missing: no such value)."""

    group: Mapping[str, str]
    count: int
    samples: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Bucket:
    """A correlation's events of one group in one sliding sub-window."""

    group: Mapping[str, str]
    #: Events counted.
    count: int
    #: Times of the newest and the earliest of them (epoch milliseconds).
    last: float | None
    first: float | None = None
    #: The earliest events; None when not read yet (:func:`~.bodies.sample_body`).
    samples: tuple[Mapping[str, Any], ...] | None = None
    #: Distinct values of a ``value_count`` field, and up to ``VALUE_NAMES`` of them.
    distinct: int = 0
    names: tuple[str, ...] = ()
    #: The communes of the events (scans only), and their failure classes with counts.
    wards: tuple[str, ...] = ()
    classes: Mapping[str, int] = dataclasses.field(default_factory=dict)
    #: A ``temporal`` correlation's referenced rules met.
    rules_met: int = 0


@dataclass(frozen=True, slots=True)
class Slide:
    """One sliding sub-window (``key``: its end) and its groups."""

    key: str
    buckets: tuple[Bucket, ...]


@dataclass(frozen=True, slots=True)
class Answer:
    """What one rule's search found in one window: places (plain rules) or sliding
    sub-windows (correlations), whichever strategy searched."""

    places: tuple[Place, ...] = ()
    slides: tuple[Slide, ...] = ()


def hits_of(samples: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    """The events of a ``top_hits`` answer as sample documents (:func:`doc`)."""
    return tuple(doc(hit) for hit in samples["hits"]["hits"])


def doc(hit: Mapping[str, Any]) -> dict[str, Any]:
    """A hit's doc values as a nested document (``{"locality": {"province": {"code": …}}}``)."""
    found: dict[str, Any] = {"_id": hit["_id"], "_index": hit["_index"]}
    for dotted, values in hit.get("fields", {}).items():
        node = found
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = values[0] if values else None
    return found


def bits(mask: int, limit: int | None = None) -> list[int]:
    """The positions of the set bits of ``mask``, lowest first (the hits' time order), at most
    ``limit`` of them."""
    found: list[int] = []
    while mask and len(found) != limit:
        low = mask & -mask
        found.append(low.bit_length() - 1)
        mask ^= low
    return found


class Samples:
    """Hits of a scan as sample events (sample fields only), converted on first use: most
    matching events of a busy window are never a sample."""

    def __init__(self, hits: Sequence[Mapping[str, Any]]) -> None:
        self.hits = hits
        self.docs: dict[int, Mapping[str, Any]] = {}

    def __getitem__(self, bit: int) -> Mapping[str, Any]:
        if bit not in self.docs:
            hit = self.hits[bit]
            fields = hit.get("fields", {})
            kept = {name: fields[name] for name in SAMPLE_FIELDS if name in fields}
            self.docs[bit] = doc({"_id": hit["_id"], "_index": hit["_index"], "fields": kept})
        return self.docs[bit]
