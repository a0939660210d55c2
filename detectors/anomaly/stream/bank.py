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

The whole bank checkpoints to one JSON-able dict (``checkpoint``/``restore``). No I/O here:
storing the checkpoint (``soc-state``) and the alerts is the caller's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from detectors.anomaly.stream.engine import Engine, Verdict
from detectors.anomaly.stream.state import SeriesState
from soc.errors import AnomalyError

FORMAT = "soc-stream-bank/1"


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


@dataclass(slots=True)
class StreamBank:
    engine: Engine
    states: dict[str, SeriesState] = field(default_factory=dict)
    unbroken: dict[str, float] = field(default_factory=dict)

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
        findings: list[Finding] = []
        for key in sorted(set(self.states) | set(values)):
            if not is_heard(key):
                continue  # a gap: nothing observed, the engine relearns afterwards
            state = self.states.get(key)
            if state is None:
                state = self.states[key] = self.engine.new_state()
            verdict = self.engine.observe(state, epoch, float(values.get(key, 0.0)))
            if verdict.note == "gap" or key not in self.unbroken:
                self.unbroken[key] = epoch
            if verdict.alert:
                findings.append(Finding(key, verdict, self.unbroken[key]))
        return findings

    def checkpoint(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "states": {key: state.to_dict() for key, state in self.states.items()},
            "unbroken": dict(self.unbroken),
        }

    @classmethod
    def restore(cls, engine: Engine, data: Mapping[str, Any]) -> StreamBank:
        if data.get("format") != FORMAT:
            raise AnomalyError(
                f"stream bank checkpoint of format {data.get('format')!r}, expected {FORMAT!r}"
            )
        states = {key: SeriesState.from_dict(raw) for key, raw in data["states"].items()}
        return cls(engine, states, {k: float(v) for k, v in data["unbroken"].items()})
