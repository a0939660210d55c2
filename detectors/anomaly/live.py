"""The live streaming detector: every locality x service series through the one engine.

Each bucket of ``SOC_ANOMALY_STREAM_BUCKET_MINUTES`` (at most 5) is read once it has closed and
``anomaly_stream_lateness_seconds`` have passed (:mod:`detectors.anomaly.series`), and every
series (event count and failure counts, per province and per commune, per service) goes through
:class:`~detectors.anomaly.stream.bank.StreamBank`, the engine ``score-csv`` runs. A series is
observed only when its collection was heard in the bucket (its collectors, else any document of
its province): a collection gap, a restart or the history -> live boundary is a gap the engine
relearns from, never a drop to zero.

State: one bank per province (a shard), checkpointed in ``<prefix>-state`` as one document per
shard (kind ``anomaly.stream-bank``, through :class:`soc.es.state.StateIndex`) with
``done_until``. A tick writes the alerts of each bucket first
(``op_type=create``, deterministic ids), then the shards; after a crash the buckets since the
checkpoint are replayed from the saved state, which yields the same alerts with the same ids, so
nothing is doubled. A province without a bank first learns ``anomaly_stream_warmup_days`` of its
history without alerting, a chunk at a time within a budget per tick
(``anomaly_stream_warmup_tick_seconds``), provinces in code order, its bank checkpointed as it
goes (a restart resumes the warm-up); once caught up with the live buckets it alerts like the
others. The alerts themselves are built by :mod:`detectors.anomaly.live_alerts`.

Where the expected value comes from is the engine's business (``Engine.observe``): a prior from
another model would plug in there, not here.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError

from detectors.anomaly import series
from detectors.anomaly.features import Key, Level, event_indices, traffic_query
from detectors.anomaly.live_alerts import alerts_of
from detectors.anomaly.stream import VIETNAM, Engine
from detectors.anomaly.stream.bank import Finding, StreamBank
from detectors.anomaly.stream.config import LIVE
from detectors.base import floor, iso
from soc.alerts import store
from soc.alerts.models import Alert, Window
from soc.config import Settings
from soc.errors import AnomalyError
from soc.es.indices import Indices
from soc.es.state import Entry, StateIndex, StateKind

log = logging.getLogger(__name__)

SAVE_CHUNK = 4
FORMAT = "soc-live-shard/1"
#: After a longer stop, catch up at most this far back (the engine then sees a gap).
MAX_CATCH_UP = timedelta(days=1)
#: History a warming province reads and learns at a time (then the tick checks its budget).
WARMUP_CHUNK = timedelta(hours=6)


def new_engine() -> Engine:
    return Engine(LIVE, VIETNAM)


def stream_bucket(settings: Settings) -> timedelta:
    minutes = settings.anomaly_stream_bucket_minutes
    if 60 % minutes:
        raise AnomalyError(f"SOC_ANOMALY_STREAM_BUCKET_MINUTES: {minutes} must divide 60")
    return timedelta(minutes=minutes)


@dataclass(slots=True)
class Shard:
    """The bank of one province, how far it has observed, and its series' collectors."""

    bank: StreamBank
    done_until: float | None = None
    collectors: dict[str, tuple[str, ...]] = field(default_factory=dict)
    warm: bool = True
    """False while the bank is still learning its history (a first start): it alerts nothing."""

    def to_doc(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "done_until": self.done_until,
            "warm": self.warm,
            "bank": self.bank.checkpoint(),
            "collectors": {k: list(v) for k, v in self.collectors.items()},
        }

    @classmethod
    def from_doc(cls, engine: Engine, data: dict[str, Any]) -> Shard:
        if data.get("format") != FORMAT:
            raise AnomalyError(f"live shard of format {data.get('format')!r}, expected {FORMAT}")
        return cls(
            StreamBank.restore(engine, data["bank"]),
            data.get("done_until"),
            {k: tuple(v) for k, v in data.get("collectors", {}).items()},
            bool(data.get("warm", True)),  # a shard saved before warm-ups were bounded is warm
        )

    def observe(
        self,
        b: series.Bucket,
        end: datetime,
        values: dict[str, float],
        province: str,
        floors: dict[str, float] | None = None,
    ) -> list[Finding]:
        """Observe this province's ``values`` of bucket ``b`` (ending at ``end``). A rise below
        its metric's floor (``floors``: the fewest events, failures ... that make a surge) is
        no alert and opens no episode: 3 logins where none were expected are one user."""
        if self.done_until is not None and end.timestamp() <= self.done_until:
            return []  # already observed (a replay after a crash between two shards' saves)
        self.collectors.update(
            (text, found)
            for text, found in b.collectors.items()
            if text.split("/", 2)[1] == province
        )

        def heard(name: str) -> bool:
            if name in values:
                return True
            text = name.rsplit("|", 1)[0]
            carriers = self.collectors.get(text)
            if carriers:
                return any(c in b.heard_collectors for c in carriers)
            return text.split("/", 2)[1] in b.heard_provinces

        found = self.bank.observe_bucket(end, values, heard=heard)
        self.done_until = end.timestamp()
        kept = []
        for f in found:
            floor_ = (floors or {}).get(series.parse(f.key)[1], 0.0)
            if f.verdict.expected < f.verdict.value < floor_:
                self.bank.release(f.key)
            elif not self._sibling_episode(f.key):
                kept.append(f)
        return kept

    def _sibling_episode(self, name: str) -> bool:
        """Another series of the same place and service alerted earlier in this episode (it is
        still held): one alert per episode of a place, not one per metric as each crosses."""
        text = name.rsplit("|", 1)[0]
        full = self.bank.engine.config.hold
        for metric in series.METRICS:
            other = self.bank.hold(series.series_key(Key.parse(text), metric))
            if other is not None and 0 < other < full:
                return True
        return False


def load(es: Elasticsearch, indices: Indices, engine: Engine) -> dict[str, Shard]:
    try:
        entries = StateIndex(es, indices).find(StateKind.ANOMALY_STREAM, size=1000)
    except NotFoundError:
        return {}
    return {e.name: Shard.from_doc(engine, e.data) for e in entries}


def save(es: Elasticsearch, indices: Indices, shards: dict[str, Shard]) -> None:
    """One document per shard, overwritten in place (its id names the province): idempotent.
    Written a few at a time: a busy province's bank is about a megabyte."""
    state, now = StateIndex(es, indices), datetime.now(UTC)
    items = sorted(shards.items())
    for i in range(0, len(items), SAVE_CHUNK):
        state.put_many(
            Entry(StateKind.ANOMALY_STREAM, province, shard.to_doc(), now)
            for province, shard in items[i : i + SAVE_CHUNK]
        )
    es.indices.refresh(index=indices.state)


@dataclass
class LiveDetector:
    """The banks between ticks (loaded once, saved after every tick that observed a bucket).

    A first start warms the banks up province by province, in code order, within a time budget
    per tick (``anomaly_stream_warmup_tick_seconds``, at least one chunk of history a tick), so no
    tick holds the anomaly job for long: a province learns its history in chunks of
    :attr:`chunk` without alerting until it has caught up with the live buckets, then runs live
    like the others. Its bank is checkpointed at the end of every tick that advanced it, so a
    restart resumes where the warm-up stopped (nothing is learnt twice).
    """

    es: Elasticsearch
    indices: Indices
    settings: Settings
    engine: Engine = field(default_factory=new_engine)
    shards: dict[str, Shard] | None = None
    chunk: timedelta = WARMUP_CHUNK
    """History read and learnt at a time by a warming province."""
    pending: list[str] = field(default_factory=list)
    """Provinces heard but without a bank yet, warmed up in this order."""

    def observe(
        self, buckets: list[series.Bucket], provinces: list[str], *, alert: bool, now: datetime
    ) -> list[Alert]:
        """Observe ``buckets`` in the shards of ``provinces``; store the alerts if ``alert``."""
        step = stream_bucket(self.settings)
        shards = self.shards or {}
        out: list[Alert] = []
        for b in buckets:
            end = b.start + step
            split = series.by_province(b.values)
            findings: list[Finding] = []
            for province in provinces:
                values = split.get(province, {})
                findings += shards[province].observe(b, end, values, province, self.floors)
            if alert and findings:
                found = alerts_of(findings, Window(start=b.start, end=end), now)
                _write(self.es, self.indices, found)
                out += found
            self._queue(set(split) | b.heard_provinces)
        return out

    @property
    def floors(self) -> dict[str, float]:
        """Per metric, the fewest of it in a bucket that can be a surge (a minimum effect)."""
        fails = float(self.settings.anomaly_min_failures)
        return {m: float(self.settings.anomaly_min_events) if m == "count" else fails
                for m in series.METRICS}  # fmt: skip

    @property
    def warming(self) -> list[str]:
        """Provinces that alert on nothing yet: learning their history or waiting their turn."""
        cold = sorted(p for p, s in (self.shards or {}).items() if not s.warm)
        return cold + self.pending

    def _queue(self, heard: set[str]) -> None:
        known = set(self.shards or {}) | set(self.pending)
        if heard - known:
            self.pending = sorted(set(self.pending) | (heard - known))

    def tick(self, now: datetime | None = None) -> list[Alert]:
        now = now or datetime.now(UTC)
        began = time.monotonic()
        step = stream_bucket(self.settings)
        ready = floor(now - timedelta(seconds=self.settings.anomaly_stream_lateness_seconds), step)
        if self.shards is None:
            self.shards = load(self.es, self.indices, self.engine)
        if not self.shards and not self.pending:
            # A first start (again each tick until some traffic is there): what to warm up.
            history = ready - timedelta(days=self.settings.anomaly_stream_warmup_days)
            self._queue(_provinces(self.es, self.indices, min(history, ready - step), ready))
        alerts = self._live(ready, now)
        if self.warming:
            self._warm_up(ready, now, began + self.settings.anomaly_stream_warmup_tick_seconds)
        return alerts

    def _live(self, ready: datetime, now: datetime) -> list[Alert]:
        """The warm provinces' buckets since their checkpoint, alerting."""
        assert self.shards is not None
        warm = sorted(p for p, s in self.shards.items() if s.warm)
        done = [d for p in warm if (d := self.shards[p].done_until) is not None]
        if not done:
            return []
        start = max(datetime.fromtimestamp(min(done), tz=UTC), ready - MAX_CATCH_UP)
        if start >= ready:
            return []
        step = stream_bucket(self.settings)
        buckets = series.read(self.es, self.indices, start, ready, step)
        alerts = self.observe(buckets, warm, alert=True, now=now)
        save(self.es, self.indices, {p: self.shards[p] for p in warm})
        return alerts

    def _warm_up(self, ready: datetime, now: datetime, deadline: float) -> None:
        """Learn history, one chunk of one province at a time, until ``deadline`` (monotonic
        seconds; at least one chunk), alerting nothing; save what advanced."""
        assert self.shards is not None
        step = stream_bucket(self.settings)
        history = ready - timedelta(days=self.settings.anomaly_stream_warmup_days)
        touched: dict[str, Shard] = {}
        while True:
            cold = sorted(p for p, s in self.shards.items() if not s.warm)
            if not cold and not self.pending:
                break
            province = cold[0] if cold else self.pending.pop(0)
            shard = self.shards.setdefault(province, Shard(StreamBank(self.engine), warm=False))
            touched[province] = shard
            done = shard.done_until
            start = history if done is None else datetime.fromtimestamp(done, tz=UTC)
            start = max(start, history)  # a long stop: what is older than the history is a gap
            stop = min(ready, start + self.chunk)
            if start < stop:
                buckets = series.read(self.es, self.indices, start, stop, step, province=province)
                self.observe(buckets, [province], alert=False, now=now)
            shard.done_until = stop.timestamp()
            if stop >= ready:
                shard.warm = True
                log.info(
                    "live anomaly bank of province %s warm (history learnt until %s): "
                    "it alerts from the next bucket",
                    province,
                    iso(ready),
                )
            if time.monotonic() >= deadline:
                break
        save(self.es, self.indices, touched)
        waiting = self.warming
        if waiting:
            log.info(
                "live anomaly warm-up: %d of %d provinces warm; alerting on nothing yet: %s",
                len(self.shards) + len(self.pending) - len(waiting),
                len(self.shards) + len(self.pending),
                ", ".join(waiting),
            )
        else:
            log.info("live anomaly warm-up done: all %d provinces alert", len(self.shards))


def _provinces(es: Elasticsearch, indices: Indices, start: datetime, end: datetime) -> set[str]:
    """The provinces with traffic in ``[start, end)``: the banks a first start warms up."""
    if start >= end:
        return set()
    answer = es.search(
        index=event_indices(indices, start, end),
        size=0,
        query=traffic_query(start, end, Level.PROVINCE),
        aggs={"p": {"terms": {"field": "locality.province.code", "size": 1000}}},
        ignore_unavailable=True,
        allow_no_indices=True,
    )
    buckets = answer.get("aggregations", {}).get("p", {}).get("buckets", [])
    return {str(b["key"]) for b in buckets}


def _write(es: Elasticsearch, indices: Indices, alerts: list[Alert]) -> None:
    store.create(es, indices, alerts, refresh=True)
