"""Many series through the one engine, bucket by bucket: how a live model uses the engine.

Keys are strings naming a series (e.g. ``commune|01|00004|vneid|count``). Each bucket, the
caller gives the values of the keys it saw and says whether the bucket was *collected* (for
every key, or per key: the collectors that carry it were heard). Then:

- a key known from earlier buckets but absent from a collected bucket observes 0 (traffic that
  stopped is data when collection is alive: that is how an outage shows within one bucket);
- a key whose collection was not heard observes nothing; the engine then sees a silence longer
  than its usual interval (a collection gap, a restart, the end of a backfilled history before
  live data) and relearns instead of alerting;
- each alert is a :class:`Finding` with its explanation: the series, observed against the
  expected band, since when, and why it is not a collection gap.

The series are rows of one :class:`~detectors.anomaly.stream.vector.Block`, updated together
by one engine step per bucket (``engine.py``). The whole bank checkpoints to one JSON-able dict
(``checkpoint``/``restore``: the keys and the arrays as base64 compressed ``.npz``; the first
format, one JSON state per series, is still restored). No I/O here: storing the checkpoint
(``soc-state``) and the alerts is the caller's.
"""

from __future__ import annotations

import base64
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from detectors.anomaly.stream.engine import Engine, Verdict
from detectors.anomaly.stream.vector import NOTE_GAP, NOTES, Block
from soc.errors import AnomalyError

FORMAT = "soc-stream-bank/2"
FORMAT_1 = "soc-stream-bank/1"
"""The first format: one JSON state per series (still restored, into rows)."""


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Finding:
    """One alert of one series in one bucket."""

    key: str
    verdict: Verdict
    unbroken_since: float
    """Since when the series has been collected without a gap."""

    def explanation(self) -> dict[str, Any]:
        v = self.verdict
        return {
            "series": self.key,
            "observed": v.value,
            "expected": round(v.expected, 3),
            "band": [round(max(v.low, 0.0), 3), round(v.high, 3)],
            "since": _iso(v.since if v.since is not None else v.at),
            "p_value": v.p,
            "score": round(v.score, 3),
            "not_a_gap": (
                "its collection was heard in this bucket and the series has been collected "
                f"without a gap since {_iso(self.unbroken_since)}"
            ),
        }


class StreamBank:
    """The series of one bank as rows of a :class:`~detectors.anomaly.stream.vector.Block`,
    updated together each bucket by the engine."""

    __slots__ = ("block", "engine", "rows", "unbroken")

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.block = engine.new_block()
        self.rows: dict[str, int] = {}
        self.unbroken = np.zeros(0)
        """Per row: since when the series has been collected without a gap (epoch seconds)."""

    def hold(self, key: str) -> int | None:
        """Observations left in the series' alert hold (``None``: an unknown series)."""
        row = self.rows.get(key)
        return None if row is None else int(self.block.hold[row])

    def release(self, key: str) -> None:
        """End the series' episode as if it had not alerted (the caller judged the crossing too
        small to matter): the next crossing alerts."""
        row = self.rows[key]
        self.block.hold[row] = 0
        self.block.since[row] = np.nan

    def _add(self, keys: list[str]) -> None:
        rows = self.engine.add(self.block, len(keys))
        self.rows.update(zip(keys, (int(r) for r in rows), strict=True))
        if self.block.n.shape[0] > self.unbroken.shape[0]:
            grown = np.full(self.block.n.shape[0], np.nan)
            grown[: self.unbroken.shape[0]] = self.unbroken
            self.unbroken = grown

    def observe_bucket(
        self,
        at: datetime,
        values: Mapping[str, float],
        *,
        heard: Callable[[str], bool] | bool = True,
    ) -> list[Finding]:
        """Observe one bucket (``at``: its end); the findings are the new alerts."""
        epoch = at.timestamp()
        is_heard = heard if callable(heard) else (lambda _key: heard)
        new = sorted(k for k in values if k not in self.rows and is_heard(k))
        if new:
            self._add(new)
        keys = [k for k in self.rows if is_heard(k)]
        if not keys:
            return []
        rows = np.fromiter((self.rows[k] for k in keys), np.int64, len(keys))
        x = np.fromiter((float(values.get(k, 0.0)) for k in keys), np.float64, len(keys))
        got = self.engine.observe(self.block, rows, epoch, x)
        restart = (got.note == NOTE_GAP) | np.isnan(self.unbroken[rows])
        self.unbroken[rows[restart]] = epoch
        findings = []
        for i in np.flatnonzero(got.alert):
            since = float(got.since[i])
            verdict = Verdict(
                epoch,
                float(x[i]),
                float(got.expected[i]),
                float(got.low[i]),
                float(got.high[i]),
                float(got.p[i]),
                float(got.score[i]),
                True,
                None if np.isnan(since) else since,
                NOTES[got.note[i]],
            )
            findings.append(Finding(keys[i], verdict, float(self.unbroken[rows[i]])))
        return sorted(findings, key=lambda f: f.key)

    def checkpoint(self) -> dict[str, Any]:
        keys = sorted(self.rows, key=self.rows.__getitem__)
        return {
            "format": FORMAT,
            "keys": keys,
            "unbroken": self.unbroken[: len(keys)].tolist(),
            "block": base64.b64encode(self.block.to_bytes()).decode("ascii"),
        }

    @classmethod
    def restore(cls, engine: Engine, data: Mapping[str, Any]) -> StreamBank:
        """A bank from its checkpoint: this format, or the per-series JSON of ``FORMAT_1``."""
        bank = cls(engine)
        if data.get("format") == FORMAT_1:
            keys = list(data["states"])
            bank._add(keys)
            for key in keys:
                bank.block.put_json(bank.rows[key], data["states"][key], engine.config.window)
                since = data["unbroken"].get(key)
                bank.unbroken[bank.rows[key]] = np.nan if since is None else float(since)
            return bank
        if data.get("format") != FORMAT:
            raise AnomalyError(
                f"stream bank checkpoint of format {data.get('format')!r}, expected {FORMAT!r}"
            )
        try:
            block = Block.from_bytes(base64.b64decode(data["block"], validate=True))
        except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
            raise AnomalyError(f"stream bank checkpoint unreadable: {exc}") from exc
        keys = list(data["keys"])
        if block.size != len(keys) or len(data["unbroken"]) != len(keys):
            raise AnomalyError("stream bank checkpoint: keys and rows differ")
        bank.block = block
        bank.rows = {k: i for i, k in enumerate(keys)}
        bank.unbroken = np.array(data["unbroken"], dtype=np.float64)
        return bank
