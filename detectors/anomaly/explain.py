"""Turn findings into alerts a provincial IT team can act on: what, where, how far off, since when.

Each alert's ``explanation`` lists the deviating features with the observed value, the expected
value and the band the baseline allowed, the baseline used (own history or province peers), and
since when the key has been deviating. Titles and summaries are built from soc's own vocabulary
(catalogue names, service labels) and numbers; codes read from events are shown through
``repr``-free plain formatting and escaped by whatever renders them. No I/O here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from detectors.anomaly import scoring
from detectors.anomaly.features import ALL_SERVICES, Features, Key, Level
from detectors.anomaly.probes import Failing
from detectors.anomaly.scoring import Deviation
from detectors.anomaly.silence import CollectorSilence, Silence
from detectors.base import iso
from soc.alerts.models import Alert, Detector, Entity, Place, RuleRef, Severity, Window
from soc.errors import LocalityError
from soc.localities import catalogue
from soc.services import Service

RULE_VERSION = "1"
TITLES: dict[str, str] = {
    "outage": "Traffic stopped (possible outage)",
    "collector-silence": "Collector silent (no events, no heartbeat)",
    "endpoint-down": "Health probe failing (endpoint down)",
    "unsynced-dossiers": "Dossiers not synchronised to the national portal",
    "sync-failing": "Sync job failing for a commune",
    "sync-job-stopped": "Sync job to the national portal stopped",
    "error-storm": "Surge of server errors (5xx)",
    "access-denied-surge": "Surge of access denied (401/403)",
    "failure-surge": "Surge of failed operations",
    "otp-verify-failure": "Surge of failed OTP verifications",
    "otp-send-failure": "Surge of failed OTP sends",
    "slowdown": "Slowdown (95th percentile latency)",
    "volume-surge": "Unusual surge of requests",
    "traffic-drop": "Traffic collapsed",
}
SEVERITY: dict[str, Severity] = {
    "outage": Severity.HIGH,
    "collector-silence": Severity.MEDIUM,
    "endpoint-down": Severity.HIGH,
    "unsynced-dossiers": Severity.HIGH,
    "sync-failing": Severity.HIGH,
    "sync-job-stopped": Severity.HIGH,
    "error-storm": Severity.HIGH,
    "failure-surge": Severity.HIGH,
    "otp-verify-failure": Severity.HIGH,
    "otp-send-failure": Severity.HIGH,
    "access-denied-surge": Severity.MEDIUM,
    "slowdown": Severity.MEDIUM,
    "volume-surge": Severity.MEDIUM,
    "traffic-drop": Severity.MEDIUM,
}


def rule(kind: str) -> RuleRef:
    return RuleRef(
        id=f"anomaly-{kind}",
        name=f"Anomaly: {TITLES[kind]}",
        level=SEVERITY[kind],
        tags=("anomaly", kind),
        version=RULE_VERSION,
    )


def place(key: Key) -> Place:
    """The catalogue's names for a key; unknown codes are kept as they are, marked unknown."""
    cat = catalogue()
    try:
        province_name = cat.province(key.province).name
    except LocalityError:
        province_name = f"unknown province {key.province}"
    if key.ward is None:
        return Place(province_code=key.province, province_name=province_name)
    try:
        ward_name = cat.ward(key.ward).name
    except LocalityError:
        ward_name = f"unknown commune {key.ward}"
    return Place(
        province_code=key.province,
        province_name=province_name,
        ward_code=key.ward,
        ward_name=ward_name,
    )


def service_label(service: str) -> str:
    if service == ALL_SERVICES:
        return "all services"
    try:
        return Service(service).label_en
    except ValueError:
        return service


def group(key: Key) -> dict[str, str]:
    return {
        "level": key.level.value,
        "province": key.province,
        "ward": key.ward or "-",
        "service": key.service,
    }


def severity(kind: str, score: float, key: Key) -> Severity:
    """The kind's level, one up when very sure, one more when a whole province is hit."""
    level = SEVERITY[kind].rank + (1 if score >= 0.8 else 0)
    level += 1 if key.level is Level.PROVINCE and kind != "collector-silence" else 0
    return list(Severity)[min(level, Severity.CRITICAL.rank)]


def number(value: float) -> float:
    return round(value, 4)


def deviation_doc(d: Deviation) -> dict[str, Any]:
    return {
        "feature": d.feature,
        "label": d.label,
        "unit": d.unit,
        "observed": number(d.observed),
        "expected": number(d.expected),
        "band": [number(d.low), number(d.high)],
        "events": d.events,
        "p_value": float(f"{d.p_value:.3g}"),
    }


def where_text(p: Place) -> str:
    return f"{p.ward_name}, {p.province_name}" if p.ward_name else p.province_name


def _shown(d: Deviation) -> str:
    if d.unit == "ratio":
        return f"{d.label} {d.observed:.0%} (expected {d.expected:.1%}, at most {d.high:.1%})"
    return (
        f"{d.label} {d.observed:.0f} {d.unit} (expected {d.expected:.1f}, band "
        f"{d.low:.0f}-{d.high:.0f})"
    )


def service_alert(
    kind: str,
    key: Key,
    where: Place,
    *,
    title: str,
    summary: str,
    count: int,
    score: float,
    explanation: dict[str, Any],
    window: Window,
    created: datetime,
) -> Alert:
    """An anomaly alert about one service at one place, grouped by its key."""
    return Alert(
        detector=Detector.ANOMALY,
        rule=rule(kind),
        severity=severity(kind, score, key),
        title=title,
        summary=summary,
        window=window,
        place=where,
        service=key.service,
        entity=Entity(type="service", value=key.service),
        group=group(key),
        count=count,
        score=score,
        explanation=explanation,
        created=created,
    )


def deviation_alert(
    row: Features,
    deviations: list[Deviation],
    score: float,
    window: Window,
    since: datetime,
    baseline_source: str,
    created: datetime,
) -> Alert:
    kind = scoring.primary(deviations).kind
    where = place(row.key)
    explanation = {
        "kind": kind,
        "level": row.key.level.value,
        "since": iso(since),
        "baseline": baseline_source,
        "features": [deviation_doc(d) for d in deviations],
        "context": {
            "events": row.count,
            "p50_ms": row.p50_ms,
            "p95_ms": row.p95_ms,
            "distinct_users": row.users,
            "distinct_ips": row.ips,
        },
    }
    summary = (
        f"{service_label(row.key.service)} at {where_text(where)}: "
        + "; ".join(_shown(d) for d in deviations)
        + f". Deviating since {iso(since)}."
    )
    return service_alert(
        kind,
        row.key,
        where,
        title=f"{TITLES[kind]}: {service_label(row.key.service)}, {where_text(where)}",
        summary=summary,
        count=row.count,
        score=score,
        explanation=explanation,
        window=window,
        created=created,
    )


def _what(key: Key) -> str:
    if key.service == ALL_SERVICES:
        return "events of any service"
    return f"{service_label(key.service)} events"


def _entity(key: Key) -> Entity:
    """The service, or the whole locality when every one of its services fell silent."""
    if key.service == ALL_SERVICES:
        return Entity(type="locality", value=key.ward or key.province)
    return Entity(type="service", value=key.service)


def duration(delta: timedelta) -> str:
    minutes = round(delta.total_seconds() / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes % 60 else f"{minutes // 60} h"


def silence_alert(s: Silence, score: float, window: Window, created: datetime) -> Alert:
    where = place(s.key)
    silent_for = window.end - s.since
    explanation = {
        "kind": "outage",
        "level": s.key.level.value,
        "since": iso(s.since),
        "silent_minutes": round(silent_for.total_seconds() / 60),
        "since_known": s.since_known,
        "needed_minutes": round(s.needed.total_seconds() / 60),
        "expected_per_hour": number(s.rate),
        "features": [
            {
                "feature": "count",
                "label": "events since the last one",
                "unit": "events",
                "observed": 0,
                "expected": number(s.expected),
                "band": [1, None],
                "events": 0,
                "p_value": float(f"{s.p_value:.3g}"),
            }
        ],
        "collectors": list(s.collectors),
        "collector_heard": bool(s.collectors),
    }
    heard = (
        " Its collector is alive (heartbeat received), so the service itself is silent."
        if s.collectors
        else " No collector is known for this traffic."
    )
    run = duration(silent_for) if s.since_known else f"at least {duration(silent_for)}"
    return Alert(
        detector=Detector.ANOMALY,
        rule=rule("outage"),
        severity=severity("outage", score, s.key),
        title=f"{TITLES['outage']}: {service_label(s.key.service)}, {where_text(where)}",
        summary=(
            f"No {_what(s.key)} from {where_text(where)} for {run} (since {iso(s.since)}); "
            f"about {s.expected:.0f} were expected over that time (now about {s.rate:.1f} an "
            f"hour at this hour of the week), and for this series a silence longer than "
            f"{duration(s.needed)} is improbable (p = {s.p_value:.1g}).{heard}"
        ),
        window=window,
        place=where,
        service=None if s.key.service == ALL_SERVICES else s.key.service,
        entity=_entity(s.key),
        group=group(s.key),
        count=0,
        score=score,
        explanation=explanation,
        created=created,
    )


def collector_alert(c: CollectorSilence, score: float, window: Window, created: datetime) -> Alert:
    provinces = sorted({k.province for k in c.keys})
    where = place(Key(Level.PROVINCE, provinces[0], None, "-")) if len(provinces) == 1 else None
    affected = [k.text() for k in c.keys[:50]]
    explanation = {
        "kind": "collector-silence",
        "since": iso(c.since),
        "collector": c.collector,
        "affected_keys": affected,
        "affected_count": len(c.keys),
        "features": [
            {
                "feature": "count",
                "label": "events and heartbeats from the collector",
                "unit": "events",
                "observed": 0,
                "expected": number(c.expected),
                "band": [1, None],
                "events": 0,
            }
        ],
    }
    return Alert(
        detector=Detector.ANOMALY,
        rule=rule("collector-silence"),
        severity=SEVERITY["collector-silence"],
        title=f"{TITLES['collector-silence']}: collector {c.collector}",
        summary=(
            f"Collector {c.collector} sent neither events nor heartbeats since about "
            f"{iso(c.since)}; {len(c.keys)} locality/service series it carries are blind "
            "(this is a monitoring gap, not evidence of a service outage)."
        ),
        window=window,
        place=where,
        entity=Entity(type="collector", value=c.collector),
        group={"collector": c.collector},
        count=0,
        score=score,
        explanation=explanation,
        created=created,
    )


def probe_alert(f: Failing, score: float, window: Window, created: datetime) -> Alert:
    """An endpoint whose health probe failed ``run`` times in a row."""
    where = place(f.key)
    last_ok = f"the last good check was at {iso(f.last_ok)}" if f.last_ok else (
        "no good check within the look-back"
    )  # fmt: skip
    explanation = {
        "kind": "endpoint-down",
        "level": f.key.level.value,
        "since": iso(f.since),
        "target": f.target,
        "last_error": f.error,
        "last_status": f.status,
        "last_ok": iso(f.last_ok) if f.last_ok else None,
        "features": [
            {
                "feature": "probe_failures_in_a_row",
                "label": "failed health checks in a row",
                "unit": "checks",
                "observed": f.run,
                "expected": number(f.share),
                "band": [0, None],
                "events": f.run,
                "p_value": float(f"{f.p_value:.3g}"),
            }
        ],
    }
    reason = f" (last error: {f.error})" if f.error else ""
    return service_alert(
        "endpoint-down",
        f.key,
        where,
        title=f"{TITLES['endpoint-down']}: {service_label(f.key.service)}, {where_text(where)}",
        summary=(
            f"The health probe of {service_label(f.key.service)} at {where_text(where)} has failed "
            f"{f.run} checks in a row since {iso(f.since)}{reason}; {last_ok}. Normally "
            f"{f.share:.1%} of its reported checks fail, so {f.run} failures in a row are "
            f"improbable (p = {f.p_value:.1g}): the endpoint is down or broken for its users."
        ),
        count=f.run,
        score=score,
        explanation=explanation,
        window=window,
        created=created,
    )
