"""Turn findings into alerts a provincial IT team can act on: what, where, how far off, since when.

Each alert's ``explanation`` lists the deviating features with the observed value, the expected
value and the band the baseline allowed, the baseline used (own history or province peers), and
since when the key has been deviating. Titles and summaries are built from soc's own vocabulary
(catalogue names, service labels) and numbers; codes read from events are shown through
``repr``-free plain formatting and escaped by whatever renders them. No I/O here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TypeVar

from detectors.anomaly import scoring
from detectors.anomaly.features import ALL_SERVICES, Features, Key, Level
from detectors.anomaly.probes import Failing
from detectors.anomaly.scoring import Deviation
from detectors.anomaly.silence import CollectorSilence, Silence
from detectors.anomaly.silence_holiday import HOLIDAY_REFERENCE
from detectors.base import iso
from soc.alerts.anomaly import (
    AnomalyKind,
    CollectorSilenceExplanation,
    Context,
    DeviationExplanation,
    EndpointDownExplanation,
    Explanation,
    Feature,
    OutageExplanation,
    ScoredFeature,
)
from soc.alerts.models import Alert, Detector, Entity, Place, RuleRef, Severity, Window
from soc.errors import LocalityError
from soc.localities import catalogue
from soc.services import Service

RULE_VERSION = "1"
TITLES: dict[AnomalyKind, str] = {
    AnomalyKind.OUTAGE: "Traffic stopped (possible outage)",
    AnomalyKind.COLLECTOR_SILENCE: "Collector silent (no events, no heartbeat)",
    AnomalyKind.ENDPOINT_DOWN: "Health probe failing (endpoint down)",
    AnomalyKind.UNSYNCED_DOSSIERS: "Dossiers not synchronised to the national portal",
    AnomalyKind.SYNC_FAILING: "Sync job failing for a commune",
    AnomalyKind.SYNC_JOB_STOPPED: "Sync job to the national portal stopped",
    AnomalyKind.ERROR_STORM: "Surge of server errors (5xx)",
    AnomalyKind.ACCESS_DENIED_SURGE: "Surge of access denied (401/403)",
    AnomalyKind.FAILURE_SURGE: "Surge of failed operations",
    AnomalyKind.OTP_VERIFY_FAILURE: "Surge of failed OTP verifications",
    AnomalyKind.OTP_SEND_FAILURE: "Surge of failed OTP sends",
    AnomalyKind.SLOWDOWN: "Slowdown (requests slower than usual)",
    AnomalyKind.VOLUME_SURGE: "Unusual surge of requests",
    AnomalyKind.TRAFFIC_DROP: "Traffic collapsed",
}
SEVERITY: dict[AnomalyKind, Severity] = {
    AnomalyKind.OUTAGE: Severity.HIGH,
    AnomalyKind.COLLECTOR_SILENCE: Severity.MEDIUM,
    AnomalyKind.ENDPOINT_DOWN: Severity.HIGH,
    AnomalyKind.UNSYNCED_DOSSIERS: Severity.HIGH,
    AnomalyKind.SYNC_FAILING: Severity.HIGH,
    AnomalyKind.SYNC_JOB_STOPPED: Severity.HIGH,
    AnomalyKind.ERROR_STORM: Severity.HIGH,
    AnomalyKind.FAILURE_SURGE: Severity.HIGH,
    AnomalyKind.OTP_VERIFY_FAILURE: Severity.HIGH,
    AnomalyKind.OTP_SEND_FAILURE: Severity.HIGH,
    AnomalyKind.ACCESS_DENIED_SURGE: Severity.MEDIUM,
    AnomalyKind.SLOWDOWN: Severity.MEDIUM,
    AnomalyKind.VOLUME_SURGE: Severity.MEDIUM,
    AnomalyKind.TRAFFIC_DROP: Severity.MEDIUM,
}


def rule(kind: AnomalyKind) -> RuleRef:
    return RuleRef(
        id=kind.rule_id,
        name=f"Anomaly: {TITLES[kind]}",
        level=SEVERITY[kind],
        tags=("anomaly", kind.value),
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


def severity(kind: AnomalyKind, score: float, key: Key) -> Severity:
    """The kind's level, one up when very sure, one more when a whole province is hit."""
    level = SEVERITY[kind].rank + (1 if score >= 0.8 else 0)
    level += 1 if key.level is Level.PROVINCE and kind is not AnomalyKind.COLLECTOR_SILENCE else 0
    return list(Severity)[min(level, Severity.CRITICAL.rank)]


def number(value: float) -> float:
    return round(value, 4)


def p_value(p: float) -> float:
    """A p-value as stored: three significant digits."""
    return float(f"{p:.3g}")


F = TypeVar("F", bound=Feature)


def silent_feature(kind: type[F], label: str, expected: float, **scored: float) -> F:
    """A silence as a feature: no event where ``expected`` were, its band asking for one;
    ``scored``: the ``p_value`` of a :class:`ScoredFeature`."""
    return kind(feature="count", label=label, unit="events", observed=0,
                expected=number(expected), band=[1, None], events=0, **scored)  # fmt: skip


def deviation_doc(d: Deviation) -> ScoredFeature:
    return ScoredFeature(
        feature=d.feature,
        label=d.label,
        unit=d.unit,
        observed=number(d.observed),
        expected=number(d.expected),
        band=[number(d.low), number(d.high)],
        events=d.events,
        p_value=p_value(d.p_value),
    )


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
    kind: AnomalyKind,
    key: Key,
    where: Place,
    *,
    title: str,
    summary: str,
    count: int,
    score: float,
    explanation: Explanation,
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
        explanation=explanation.doc(),
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
    explanation = DeviationExplanation(
        kind=kind,
        level=row.key.level.value,
        since=iso(since),
        baseline=baseline_source,
        features=[deviation_doc(d) for d in deviations],
        context=Context(
            events=row.count,
            p50_ms=row.p50_ms,
            p95_ms=row.p95_ms,
            distinct_users=row.users,
            distinct_ips=row.ips,
        ),
    )
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
    holiday, p = s.holiday_scale < 1.0, p_value(s.p_value)
    silent = silent_feature(ScoredFeature, "events since the last one", s.expected, p_value=p)
    explanation = OutageExplanation(
        level=s.key.level.value,
        since=iso(s.since),
        silent_minutes=round(silent_for.total_seconds() / 60),
        since_known=s.since_known,
        needed_minutes=round(s.needed.total_seconds() / 60),
        expected_per_hour=number(s.rate),
        features=[silent],
        collectors=list(s.collectors),
        collector_heard=bool(s.collectors),
        holiday_scale=number(s.holiday_scale) if holiday else None,
    )
    heard = (
        " Its collector is alive (heartbeat received), so the service itself is silent."
        if s.collectors
        else " No collector is known for this traffic."
    )
    if holiday:  # why a holiday silence was judged as it was (silence.holiday_scale)
        heard += (f" Public holiday: expected volume x{s.holiday_scale:.2g} in the holiday's hours "
                  f"(this series' own traffic in the {duration(HOLIDAY_REFERENCE)} before the "
                  "silence, against its usual), so a longer silence is needed.")  # fmt: skip
    run = duration(silent_for) if s.since_known else f"at least {duration(silent_for)}"
    return Alert(
        detector=Detector.ANOMALY,
        rule=rule(AnomalyKind.OUTAGE),
        severity=severity(AnomalyKind.OUTAGE, score, s.key),
        title=f"{TITLES[AnomalyKind.OUTAGE]}: {service_label(s.key.service)}, {where_text(where)}",
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
        explanation=explanation.doc(),
        created=created,
    )


def collector_alert(c: CollectorSilence, score: float, window: Window, created: datetime) -> Alert:
    provinces = sorted({k.province for k in c.keys})
    where = place(Key(Level.PROVINCE, provinces[0], None, "-")) if len(provinces) == 1 else None
    affected = [k.text() for k in c.keys[:50]]
    explanation = CollectorSilenceExplanation(
        since=iso(c.since),
        collector=c.collector,
        affected_keys=affected,
        affected_count=len(c.keys),
        features=[silent_feature(Feature, "events and heartbeats from the collector", c.expected)],
    )
    return Alert(
        detector=Detector.ANOMALY,
        rule=rule(AnomalyKind.COLLECTOR_SILENCE),
        severity=SEVERITY[AnomalyKind.COLLECTOR_SILENCE],
        title=f"{TITLES[AnomalyKind.COLLECTOR_SILENCE]}: collector {c.collector}",
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
        explanation=explanation.doc(),
        created=created,
    )


def probe_alert(f: Failing, score: float, window: Window, created: datetime) -> Alert:
    """An endpoint whose health probe failed ``run`` times in a row."""
    where = place(f.key)
    last_ok = f"the last good check was at {iso(f.last_ok)}" if f.last_ok else (
        "no good check within the look-back"
    )  # fmt: skip
    explanation = EndpointDownExplanation(
        level=f.key.level.value,
        since=iso(f.since),
        target=f.target,
        last_error=f.error,
        last_status=f.status,
        last_ok=iso(f.last_ok) if f.last_ok else None,
        features=[
            ScoredFeature(
                feature="probe_failures_in_a_row",
                label="failed health checks in a row",
                unit="checks",
                observed=f.run,
                expected=number(f.share),
                band=[0, None],
                events=f.run,
                p_value=p_value(f.p_value),
            )
        ],
    )
    reason = f" (last error: {f.error})" if f.error else ""
    return service_alert(
        AnomalyKind.ENDPOINT_DOWN,
        f.key,
        where,
        title=f"{TITLES[AnomalyKind.ENDPOINT_DOWN]}: {service_label(f.key.service)}, "
        f"{where_text(where)}",
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
