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
nothing is doubled. With no checkpoint at all the banks first learn from the history before the
first live bucket (``anomaly_stream_warmup_days``) without alerting.

Where the expected value comes from is the engine's business (``Engine.observe``): a prior from
another model would plug in there, not here.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError

from detectors.anomaly import explain, series
from detectors.anomaly.features import Key
from detectors.anomaly.stream import VIETNAM, Engine
from detectors.anomaly.stream.bank import Finding, StreamBank
from detectors.anomaly.stream.config import LIVE
from detectors.base import floor, iso
from soc.alerts import store
from soc.alerts.anomaly import AnomalyKind, StreamExplanation, StreamSeries
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
#: The kind an alerting metric raises, by direction (None: not an alert in that direction).
KINDS: dict[str, tuple[AnomalyKind | None, AnomalyKind | None]] = {
    "count": (AnomalyKind.VOLUME_SURGE, AnomalyKind.TRAFFIC_DROP),
    "failed": (AnomalyKind.FAILURE_SURGE, None),
    "e5xx": (AnomalyKind.ERROR_STORM, None),
    "denied": (AnomalyKind.ACCESS_DENIED_SURGE, None),
    "otp_verify_failed": (AnomalyKind.OTP_VERIFY_FAILURE, None),
    "otp_send_failed": (AnomalyKind.OTP_SEND_FAILURE, None),
}
#: The kind that names an alert when several series of one place deviate at once: the most
#: specific cause first (a 5xx storm also raises the failed count; it is an error storm).
PRIORITY = (
    AnomalyKind.ERROR_STORM,
    AnomalyKind.OTP_VERIFY_FAILURE,
    AnomalyKind.OTP_SEND_FAILURE,
    AnomalyKind.ACCESS_DENIED_SURGE,
    AnomalyKind.FAILURE_SURGE,
    AnomalyKind.TRAFFIC_DROP,
    AnomalyKind.VOLUME_SURGE,
)
LABELS = {
    "count": "events",
    "failed": "failed operations",
    "e5xx": "5xx server errors",
    "denied": "401/403 access denied",
    "otp_verify_failed": "failed OTP verifications",
    "otp_send_failed": "failed OTP sends",
}


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

    def to_doc(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "done_until": self.done_until,
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
        )

    def observe(self, b: series.Bucket, end: datetime) -> list[Finding]:
        if self.done_until is not None and end.timestamp() <= self.done_until:
            return []  # already observed (a replay after a crash between two shards' saves)
        self.collectors.update(b.collectors)
        values = b.values

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
        return [f for f in found if not self._sibling_episode(f.key)]

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


def _kind(f: Finding) -> AnomalyKind | None:
    _key, metric = series.parse(f.key)
    up, down = KINDS[metric]
    return up if f.verdict.value > f.verdict.expected else down


def alerts_of(findings: list[Finding], window: Window, created: datetime) -> list[Alert]:
    """One alert per place and service: the findings of its series, the primary kind naming it."""
    by_key: dict[Key, list[tuple[AnomalyKind, Finding]]] = defaultdict(list)
    for f in findings:
        kind = _kind(f)
        if kind is not None:
            by_key[series.parse(f.key)[0]].append((kind, f))
    return [
        _alert(key, found, window, created)
        for key, found in sorted(by_key.items(), key=lambda kv: kv[0].text())
    ]


def _shown(kind: AnomalyKind, f: Finding) -> str:
    v, metric = f.verdict, series.parse(f.key)[1]
    return (
        f"{LABELS[metric]} {v.value:g} where {v.expected:.1f} was expected "
        f"(band {max(v.low, 0.0):.1f}-{v.high:.1f})"
    )


def _alert(
    key: Key, found: list[tuple[AnomalyKind, Finding]], window: Window, created: datetime
) -> Alert:
    found.sort(key=lambda kf: PRIORITY.index(kf[0]))
    kind, top = found[0]
    since = min(f.verdict.since or f.verdict.at for _k, f in found)
    # The engine stamps a bucket with its end; people read the bucket's start.
    since_at = datetime.fromtimestamp(since, tz=UTC) - (window.end - window.start)
    where = explain.place(key)
    score = round(max(f.verdict.score for _k, f in found), 4)
    explanation = StreamExplanation(
        kind=kind,
        level=key.level.value,
        since=iso(since_at),
        observed=top.verdict.value,
        expected=round(top.verdict.expected, 3),
        band=[round(max(top.verdict.low, 0.0), 3), round(top.verdict.high, 3)],
        not_a_gap=top.explanation()["not_a_gap"],
        series=[StreamSeries.model_validate(f.explanation() | {"kind": k}) for k, f in found],
    )
    label = explain.service_label(key.service)
    summary = (
        f"{label} at {where.province_name}"
        + (f", {where.ward_name}" if where.ward_name else "")
        + ": "
        + "; ".join(_shown(k, f) for k, f in found)
        + f". Deviating since {iso(since_at)}; not a collection gap: "
        + explanation.not_a_gap
        + "."
    )
    return explain.service_alert(
        kind,
        key,
        where,
        title=f"{explain.TITLES[kind]}: {label}, {explain.where_text(where)}",
        summary=summary,
        count=int(top.verdict.value),
        score=score,
        explanation=explanation,
        window=window,
        created=created,
    )


@dataclass
class LiveDetector:
    """The banks between ticks (loaded once, saved after every tick that observed a bucket)."""

    es: Elasticsearch
    indices: Indices
    settings: Settings
    engine: Engine = field(default_factory=new_engine)
    shards: dict[str, Shard] | None = None

    def _shard(self, province: str) -> Shard:
        assert self.shards is not None
        if province not in self.shards:
            self.shards[province] = Shard(StreamBank(self.engine))
        return self.shards[province]

    def observe(self, buckets: list[series.Bucket], *, alert: bool, now: datetime) -> list[Alert]:
        step = stream_bucket(self.settings)
        out: list[Alert] = []
        for b in buckets:
            end = b.start + step
            split = series.by_province(b.values)
            findings: list[Finding] = []
            for province in sorted(set(split) | b.heard_provinces | set(self.shards or {})):
                findings += self._shard(province).observe(b, end)
            if alert and findings:
                found = alerts_of(findings, Window(start=b.start, end=end), now)
                _write(self.es, self.indices, found)
                out += found
        return out

    def warm_up(self, ready: datetime, now: datetime) -> None:
        """Learn from the history before the first live bucket, alerting on nothing."""
        step = stream_bucket(self.settings)
        start = ready - timedelta(days=self.settings.anomaly_stream_warmup_days)
        while start < ready:
            stop = min(ready, start + timedelta(hours=6))
            self.observe(series.read(self.es, self.indices, start, stop, step), alert=False,
                         now=now)  # fmt: skip
            start = stop
        log.info("live anomaly banks warmed up on history until %s", iso(ready))

    def tick(self, now: datetime | None = None) -> list[Alert]:
        now = now or datetime.now(UTC)
        step = stream_bucket(self.settings)
        ready = floor(now - timedelta(seconds=self.settings.anomaly_stream_lateness_seconds), step)
        if self.shards is None:
            self.shards = load(self.es, self.indices, self.engine)
            if not self.shards:
                self.warm_up(ready, now)
                for shard in self.shards.values():
                    shard.done_until = ready.timestamp()
                save(self.es, self.indices, self.shards)
                return []
        done = [s.done_until for s in self.shards.values() if s.done_until is not None]
        start = datetime.fromtimestamp(min(done), tz=UTC) if done else ready - step
        start = max(start, ready - MAX_CATCH_UP)
        if start >= ready:
            return []
        alerts = self.observe(
            series.read(self.es, self.indices, start, ready, step), alert=True, now=now
        )
        save(self.es, self.indices, self.shards)
        return alerts


def _write(es: Elasticsearch, indices: Indices, alerts: list[Alert]) -> None:
    store.create(es, indices, alerts, refresh=True)
