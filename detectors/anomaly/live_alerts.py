"""The live streaming detector's alerts: one per place and service from its series' findings.

A :class:`~detectors.anomaly.stream.bank.Finding` is one series crossing the alert line in one
bucket; the findings of one place and service in a bucket become one alert, named by its most
specific kind, with the series, observed vs expected band, since when and why it is not a
collection gap. No I/O here (:mod:`detectors.anomaly.live` stores them).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from detectors.anomaly import explain, scoring, series
from detectors.anomaly.features import Key
from detectors.anomaly.stream.bank import Finding
from detectors.base import iso
from soc.alerts.anomaly import AnomalyKind, StreamExplanation, StreamSeries
from soc.alerts.models import Alert, Window

#: The kind an alerting metric raises, by direction (None: not an alert in that direction).
KINDS: dict[str, tuple[AnomalyKind | None, AnomalyKind | None]] = {
    "count": (AnomalyKind.VOLUME_SURGE, AnomalyKind.TRAFFIC_DROP),
    "failed": (AnomalyKind.FAILURE_SURGE, None),
    "e5xx": (AnomalyKind.ERROR_STORM, None),
    "denied": (AnomalyKind.ACCESS_DENIED_SURGE, None),
    "otp_verify_failed": (AnomalyKind.OTP_VERIFY_FAILURE, None),
    "otp_send_failed": (AnomalyKind.OTP_SEND_FAILURE, None),
}
#: The kind that names an alert when several series of one place deviate at once: the 15-minute
#: model's order (the most specific cause first: a 5xx storm also raises the failed count).
PRIORITY = scoring.PRIORITY
LABELS = {
    "count": "events",
    "failed": "failed operations",
    "e5xx": "5xx server errors",
    "denied": "401/403 access denied",
    "otp_verify_failed": "failed OTP verifications",
    "otp_send_failed": "failed OTP sends",
}


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
