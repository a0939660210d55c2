"""The anomaly detector's vocabulary as types: its alert kinds (:class:`AnomalyKind`) and the
``alert.explanation`` payload of each kind, one pydantic model per shape.

Owned here, in the alerts layer, because the detectors write these payloads and incidents,
notify and the console read them (``soc.incidents`` maps ``anomaly-<kind>`` rule ids to failure
classes in ``causes.yaml``). :meth:`Explanation.doc` is the stored JSON: fields in the order the
models declare them, numbers kept as the builders gave them (``0`` stays ``0``, ``0.0`` stays
``0.0``), so typing the payloads changed no stored document
(``tests/detectors/anomaly/test_explanation_docs.py``). :func:`parse_explanation` reads one back.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

#: A number as the builder gave it: the stored JSON tells ``0`` from ``0.0``.
Number = int | float

RULE_PREFIX = "anomaly-"


class AnomalyKind(StrEnum):
    """What an anomaly alert says is wrong; its rule id is ``anomaly-<kind>``."""

    OUTAGE = "outage"
    COLLECTOR_SILENCE = "collector-silence"
    ENDPOINT_DOWN = "endpoint-down"
    UNSYNCED_DOSSIERS = "unsynced-dossiers"
    SYNC_FAILING = "sync-failing"
    SYNC_JOB_STOPPED = "sync-job-stopped"
    ERROR_STORM = "error-storm"
    ACCESS_DENIED_SURGE = "access-denied-surge"
    FAILURE_SURGE = "failure-surge"
    OTP_VERIFY_FAILURE = "otp-verify-failure"
    OTP_SEND_FAILURE = "otp-send-failure"
    SLOWDOWN = "slowdown"
    VOLUME_SURGE = "volume-surge"
    TRAFFIC_DROP = "traffic-drop"

    @property
    def rule_id(self) -> str:
        return f"{RULE_PREFIX}{self.value}"

    @classmethod
    def of_rule(cls, rule_id: str) -> AnomalyKind | None:
        """The kind an anomaly rule id names, None for any other rule."""
        if not rule_id.startswith(RULE_PREFIX):
            return None
        try:
            return cls(rule_id.removeprefix(RULE_PREFIX))
        except ValueError:
            return None


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=True)

    def doc(self) -> dict[str, Any]:
        """The stored JSON object (plain dicts, lists, strings and numbers)."""
        return self.model_dump()


class Feature(Payload):
    """One feature outside its band: observed against expected; ``band`` ``[low, high]``
    (``None``: unbounded)."""

    feature: str
    label: str
    unit: str
    observed: Number
    expected: Number
    band: list[Number | None]
    events: int


class ScoredFeature(Feature):
    """A feature with the p-value of the test that found it off."""

    p_value: float


class Explanation(Payload):
    kind: AnomalyKind


class Context(Payload):
    events: int
    p50_ms: float | None
    p95_ms: float | None
    distinct_users: int
    distinct_ips: int


class DeviationExplanation(Explanation):
    """Features of one bucket off their baseline (surges, drops, slowdowns)."""

    level: str
    since: str
    baseline: str
    features: list[ScoredFeature]
    context: Context


class OutageExplanation(Explanation):
    kind: Literal[AnomalyKind.OUTAGE] = AnomalyKind.OUTAGE
    level: str
    since: str
    silent_minutes: int
    since_known: bool
    needed_minutes: int
    expected_per_hour: float
    features: list[ScoredFeature]
    collectors: list[str]
    collector_heard: bool
    #: On a public holiday, the share of its usual volume the silence's holiday hours were
    #: expected to carry (``detectors.anomaly.silence.holiday_scale``); None on other days.
    holiday_scale: float | None = None


class CollectorSilenceExplanation(Explanation):
    kind: Literal[AnomalyKind.COLLECTOR_SILENCE] = AnomalyKind.COLLECTOR_SILENCE
    since: str
    collector: str
    affected_keys: list[str]
    affected_count: int
    features: list[Feature]


class EndpointDownExplanation(Explanation):
    kind: Literal[AnomalyKind.ENDPOINT_DOWN] = AnomalyKind.ENDPOINT_DOWN
    level: str
    since: str
    target: str | None
    last_error: str | None
    last_status: int | None
    last_ok: str | None
    features: list[ScoredFeature]


class UnsyncedExplanation(Explanation):
    kind: Literal[AnomalyKind.UNSYNCED_DOSSIERS] = AnomalyKind.UNSYNCED_DOSSIERS
    level: str
    since: str | None
    features: list[ScoredFeature]
    dossiers_changed: int
    oldest_unsynced: str | None
    newest_unsynced: str | None


class SyncFailingExplanation(Explanation):
    kind: Literal[AnomalyKind.SYNC_FAILING] = AnomalyKind.SYNC_FAILING
    level: str
    since: str
    last_ok: str | None
    last_error: str | None
    last_reason: str | None
    last_run_id: str | None
    features: list[ScoredFeature]


class SyncStoppedExplanation(Explanation):
    kind: Literal[AnomalyKind.SYNC_JOB_STOPPED] = AnomalyKind.SYNC_JOB_STOPPED
    level: str
    since: str
    since_known: bool
    last_run: str | None
    period_minutes: float
    collectors: list[str]
    collector_heard: bool
    features: list[ScoredFeature]


class StreamSeries(Payload):
    """One series of a live (streaming) alert."""

    series: str
    observed: Number
    expected: float
    band: list[Number]
    since: str
    p_value: float
    score: float
    not_a_gap: str
    kind: AnomalyKind


class StreamExplanation(Explanation):
    """A live alert: the series of one place and service off their band in one bucket."""

    level: str
    engine: Literal["stream"] = "stream"
    since: str
    observed: Number
    expected: float
    band: list[Number]
    not_a_gap: str
    series: list[StreamSeries]


AnyExplanation = (
    DeviationExplanation
    | OutageExplanation
    | CollectorSilenceExplanation
    | EndpointDownExplanation
    | UnsyncedExplanation
    | SyncFailingExplanation
    | SyncStoppedExplanation
    | StreamExplanation
)
_KINDS = frozenset(k.value for k in AnomalyKind)
_BY_KIND: dict[str, type[AnyExplanation]] = {
    AnomalyKind.OUTAGE: OutageExplanation,
    AnomalyKind.COLLECTOR_SILENCE: CollectorSilenceExplanation,
    AnomalyKind.ENDPOINT_DOWN: EndpointDownExplanation,
    AnomalyKind.UNSYNCED_DOSSIERS: UnsyncedExplanation,
    AnomalyKind.SYNC_FAILING: SyncFailingExplanation,
    AnomalyKind.SYNC_JOB_STOPPED: SyncStoppedExplanation,
}


def parse_explanation(doc: Mapping[str, Any]) -> AnyExplanation | None:
    """The typed payload of a stored anomaly explanation; None when it is not one (another
    detector's, or a document written by an older or newer soc that no model fits)."""
    kind = doc.get("kind")
    if not isinstance(kind, str) or kind not in _KINDS:
        return None
    model: type[AnyExplanation]
    if doc.get("engine") == "stream":
        model = StreamExplanation
    else:
        model = _BY_KIND.get(kind, DeviationExplanation)
    try:
        return model.model_validate(doc)
    except ValidationError:
        return None
