"""The shipper: spool → ``_bulk`` (``op_type=create``), retried until Elasticsearch has answered.

It reads batches from the :class:`~collectors.spool.Spool` (by count, or whatever arrived within
``flush_interval``), sends them as one ``_bulk`` body built from the spooled bytes, and only then
moves the spool cursor. Per item:

* 201 created → ``indexed`` (``deadlettered`` for a dead letter); 409 → ``duplicates`` (a replay,
  or a dead letter byte-identical to one stored: the deterministic ``_id`` is there), so
  ``deadlettered`` is what the dead-letter index holds;
* 429 / 5xx, or the whole request failing (timeout, connection refused, 429) → retried with
  exponential back-off, in order, for as long as it takes (the spool holds everything meanwhile);
* any other rejection (a mapping conflict) → the event becomes a dead letter with the reason and
  the document as raw text, sent in the same batch's next attempt.

The only index names it writes are those already in the records. This module must not parse.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout, TransportError
from elasticsearch import ApiError, Elasticsearch

from collectors.metrics import Metrics
from collectors.normalise import MAX_RAW_KEPT
from collectors.spool import Batch, Record, Spool
from soc.errors import ElasticsearchError

log = logging.getLogger(__name__)

_RETRY_STATUSES = {429, 500, 502, 503, 504}
#: The counter of an action Elasticsearch created, by its kind.
_COUNTER = {"event": "indexed", "deadletter": "deadlettered"}


class Shipper:
    """Moves spooled records into Elasticsearch; :meth:`run` in a thread, :meth:`stop` it."""

    def __init__(
        self,
        es: Elasticsearch,
        spool: Spool,
        metrics: Metrics,
        *,
        deadletter_index: str,
        batch_size: int = 2000,
        flush_interval: float = 1.0,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        prepare: Callable[[], None] | None = None,
    ) -> None:
        self.es = es
        self.spool = spool
        self.metrics = metrics
        self.deadletter_index = deadletter_index
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._stop = threading.Event()
        # Run once before the first bulk (install templates): its failure is retried like a bulk's.
        self._prepare = prepare

    def stop(self) -> None:
        self._stop.set()

    def resume(self) -> None:
        self._stop.clear()

    def run(self) -> None:
        """Ship until :meth:`stop`. A reader thread decodes the next batch and builds its bulk
        body while the current one is in Elasticsearch, so the next request leaves as soon as the
        answer is in; batches still go one at a time, in spool order, each committed once
        answered."""
        ready: queue.Queue[tuple[Batch, bytes]] = queue.Queue(maxsize=1)
        reader = threading.Thread(
            target=self._read_ahead, args=(ready,), name="shipper-reader", daemon=True
        )
        reader.start()
        try:
            while not self._stop.is_set():
                try:
                    batch, body = ready.get(timeout=0.1)
                except queue.Empty:
                    continue
                self._ship(batch, body)
        finally:
            self._stop.set()
            reader.join(self.flush_interval + 5)

    def _read_ahead(self, ready: queue.Queue[tuple[Batch, bytes]]) -> None:
        at = self.spool.cursor
        while not self._stop.is_set():
            batch = self.spool.read_from(at, self.batch_size, wait=self.flush_interval)
            self.metrics.pending(self.spool.pending_bytes())
            if not batch.parts:
                continue
            item = (batch, batch.body())
            while not self._stop.is_set():
                try:
                    ready.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            at = batch.end

    def drain(self, timeout: float = 30.0) -> bool:
        """Ship until the spool is empty (tests, shutdown); False if time ran out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ship_once(wait=0.0, deadline=deadline) == 0 and self.spool.pending_bytes() == 0:
                return True
        return False

    def ship_once(self, wait: float, deadline: float | None = None) -> int:
        """Send one batch (retrying until answered or stopped); the number of records shipped."""
        batch = self.spool.read(self.batch_size, wait=wait)
        self.metrics.pending(self.spool.pending_bytes())
        if not batch.parts:
            return 0
        return batch.count if self._ship(batch, None, deadline) else 0

    def _ship(self, batch: Batch, body: bytes | None, deadline: float | None = None) -> bool:
        """Send ``batch`` until every item is answered, then commit it; False if stopped first."""
        pending: list[Record] | None = None  # None: the whole batch, as spooled
        delay = self.retry_initial
        while pending is None or pending:
            if self._stop.is_set() or (deadline is not None and time.monotonic() > deadline):
                return False  # not committed: the next run resends this batch, nothing is lost
            try:
                if self._prepare is not None:
                    self._prepare()
                    self._prepare = None
                if pending is None:
                    pending = self._attempt_batch(batch, body)
                else:
                    pending = self._attempt(pending)
            except (
                TransportConnectionError,
                ConnectionTimeout,
                TransportError,
                ApiError,
                ElasticsearchError,
            ) as exc:
                self._retry_wait(_sources(batch, pending), exc, delay)
                delay = min(delay * 2, self.retry_max)
                continue
            if pending:
                self._retry_wait(_sources(batch, pending), "items refused with 429/5xx", delay)
                delay = min(delay * 2, self.retry_max)
        self.spool.commit(batch.end)
        self.metrics.pending(self.spool.pending_bytes())
        return True

    def _retry_wait(self, sources: dict[str, int], why: object, delay: float) -> None:
        for source in sorted(sources):
            self.metrics.inc(source, "retries")
        log.warning(
            "bulk of %d actions not accepted (%s); retrying in %.1fs",
            sum(sources.values()),
            str(why)[:200],
            delay,
        )
        self._stop.wait(delay)

    def _attempt_batch(self, batch: Batch, body: bytes | None) -> list[Record]:
        """The first ``_bulk`` of a batch, its body the spooled bytes; when every item was
        created it is counted per part, else item by item (:meth:`_attempt`)."""
        count = batch.count
        resp = self._bulk(body if body is not None else batch.body(), count)
        if resp.get("errors") is not False:
            return self._settle_all(batch.records(), resp["items"])
        for (source, kind), amount in batch.tally().items():
            self.metrics.inc(source, _COUNTER.get(kind, "indexed"), amount)
        now = time.time()
        latest: dict[str, float] = {}
        for part in batch.parts:
            latest[part.source_id] = part.spooled_at
        for source, spooled in latest.items():
            self.metrics.lag(source, now - spooled)
        return []

    def _attempt(self, records: list[Record]) -> list[Record]:
        """One ``_bulk`` of records; returns those to send again (retryable or new dead letters)."""
        return self._settle_all(records, self._bulk(bulk_body(records), len(records))["items"])

    def _bulk(self, data: bytes, actions: int) -> dict[str, Any]:
        resp = self.es.bulk(
            body=data,  # type: ignore[arg-type]  # pre-encoded NDJSON, sent as is
            filter_path="errors,items.*.status,items.*.error.type,items.*.error.reason",
        )
        items = resp.get("items", [])
        if len(items) != actions:
            raise TransportError(f"bulk answered {len(items)} items for {actions} actions")
        return dict(resp.body)

    def _settle_all(self, records: list[Record], items: list[dict[str, Any]]) -> list[Record]:
        again: list[Record] = []
        # Counted per batch, not per item: one increment per source and counter.
        counts: dict[tuple[str, str], int] = {}
        latest: dict[str, float] = {}
        for record, item in zip(records, items, strict=True):
            info = next(iter(item.values()))
            self._settle(record, info, again, counts, latest)
        for (source, name), amount in counts.items():
            self.metrics.inc(source, name, amount)
        now = time.time()
        for source, ingested in latest.items():
            self.metrics.lag(source, now - ingested)
        return again

    def _settle(
        self,
        record: Record,
        info: dict[str, Any],
        again: list[Record],
        counts: dict[tuple[str, str], int],
        latest: dict[str, float],
    ) -> None:
        status = int(info.get("status", 0))
        counter = _COUNTER.get(record.kind, "indexed")
        if status in (200, 201):
            latest[record.source_id] = record.ingested
        elif status == 409:
            # Already there: a replay, a resent message, or a byte-identical dead letter (their
            # ids are digests of the bytes): stored once, so counted once in ``deadlettered``.
            counter = "duplicates"
        elif status in _RETRY_STATUSES:
            again.append(record)
            return
        elif record.kind == "event":
            error = info.get("error") or {}
            reason = f"{error.get('type', status)}: {error.get('reason', '')}"
            log.warning(
                "event %s refused by %s (%s); dead-lettered", record.id, record.index, reason[:200]
            )
            again.append(self._deadletter(record, reason))
            return
        else:
            # A dead letter refused is a bug in soc's own mapping, not in the input: say it loudly.
            log.error("dead letter %s refused by %s: %s", record.id, record.index, info)
            counter = "dropped"
        key = (record.source_id, counter)
        counts[key] = counts.get(key, 0) + 1

    def _deadletter(self, record: Record, reason: str) -> Record:
        doc = orjson.loads(record.document)
        raw = record.document[:MAX_RAW_KEPT]
        letter: dict[str, Any] = {
            "@timestamp": doc.get("event", {}).get("ingested") or doc.get("@timestamp"),
            "deadletter": {
                "stage": "index",
                "reason": reason[:1000],
                "raw": raw.decode("utf-8", "replace"),
                "raw_bytes": len(record.document),
                "truncated": len(record.document) > MAX_RAW_KEPT,
            },
            "soc": {
                k: v for k, v in (doc.get("soc") or {}).items() if k in ("source", "collector")
            },
            "event": {"ingested": doc.get("event", {}).get("ingested")},
        }
        if isinstance(doc.get("locality"), dict):
            letter["locality"] = doc["locality"]
        if raw != raw.decode("utf-8", "replace").encode():
            letter["deadletter"]["raw_base64"] = base64.b64encode(raw).decode()
        ident = hashlib.blake2b(
            f"index\0{record.index}\0{record.id}".encode(), digest_size=16
        ).hexdigest()
        return Record(
            self.deadletter_index,
            ident,
            record.source_id,
            "deadletter",
            orjson.dumps(letter),
            record.ingested,
        )


def _sources(batch: Batch, pending: list[Record] | None) -> dict[str, int]:
    """Actions still to send per source: the whole batch, or what is pending of it."""
    counts: dict[str, int] = {}
    if pending is None:
        for part in batch.parts:
            counts[part.source_id] = counts.get(part.source_id, 0) + part.hi - part.lo
    else:
        for record in pending:
            counts[record.source_id] = counts.get(record.source_id, 0) + 1
    return counts


def bulk_body(records: Sequence[Record]) -> bytes:
    """The ``_bulk`` NDJSON of ``records``: a ``create`` line each, then the spooled bytes."""
    heads: dict[str, bytes] = {}
    parts: list[bytes] = []
    for r in records:
        head = heads.get(r.index)
        if head is None:
            head = heads[r.index] = b'{"create":{"_index":"%s","_id":"' % r.index.encode()
        parts += (head, r.id.encode(), b'"}}\n', r.document, b"\n")
    return b"".join(parts)
