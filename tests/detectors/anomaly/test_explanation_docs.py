"""The stored alert document of every anomaly kind, byte for byte, against a fixture written by
the builders before explanations were typed (``data/explanation_docs.json``): typing the payloads
(:mod:`soc.alerts.anomaly`) must not change one field, one key order or one int/float of them.

Regenerate the fixture only for an intended change of the documents: run this file as a script
(``python tests/detectors/anomaly/test_explanation_docs.py > <the fixture>``).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from detectors.anomaly import explain, explain_sync, live_alerts
from detectors.anomaly.features import ALL_SERVICES, Features, Key, Level
from detectors.anomaly.probes import Failing
from detectors.anomaly.scoring import Deviation
from detectors.anomaly.silence import CollectorSilence, Silence
from detectors.anomaly.stream.bank import Finding
from detectors.anomaly.stream.engine import Verdict
from detectors.anomaly.syncjob import FailingCommune
from detectors.anomaly.syncstop import StoppedJob
from detectors.anomaly.unsynced import Backlog, Tally
from soc.alerts.anomaly import AnomalyKind, parse_explanation
from soc.alerts.models import Alert, Window

FIXTURE = Path(__file__).parent / "data" / "explanation_docs.json"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
WINDOW = Window(start=T0, end=T0 + timedelta(minutes=15))
CREATED = T0 + timedelta(minutes=16)
WARD = Key(Level.COMMUNE, "01", "00004", "vneid")
PROVINCE = Key(Level.PROVINCE, "01", None, ALL_SERVICES)


def _deviation(kind: AnomalyKind, feature: str, unit: str, observed: float, p: float) -> Deviation:
    return Deviation(feature, kind, f"{feature} label", observed, 0.0123456, 0.0, 0.05, p, unit, 40)


def _finding(metric: str, value: float, expected: float) -> Finding:
    verdict = Verdict(
        at=WINDOW.end.timestamp(), value=value, expected=expected, low=-1.0, high=expected * 2,
        p=1.234e-7, score=0.91234, alert=True, since=WINDOW.start.timestamp(),
    )  # fmt: skip
    return Finding(f"{WARD.text()}|{metric}", verdict, (T0 - timedelta(days=3)).timestamp())


def cases() -> dict[str, Alert]:
    """One alert per builder and kind, from fixed inputs."""
    row = Features(WARD, T0, 120, p50_ms=80.0, p95_ms=950.5, users=30, ips=12)
    out: dict[str, Alert] = {}
    for kind, feature, unit, observed in [
        (AnomalyKind.ERROR_STORM, "error_5xx", "ratio", 0.4),
        (AnomalyKind.FAILURE_SURGE, "failure", "ratio", 0.25),
        (AnomalyKind.SLOWDOWN, "p95_ms", "ms", 950.5),
        (AnomalyKind.VOLUME_SURGE, "count", "events", 120),
        (AnomalyKind.TRAFFIC_DROP, "count", "events", 3),
    ]:
        devs = [
            _deviation(kind, feature, unit, observed, 1.5e-6),
            _deviation(AnomalyKind.SLOWDOWN, "p95_ms", "ms", 900, 0.001),
        ]
        since = T0 - timedelta(hours=1)
        out[kind.value] = explain.deviation_alert(row, devs, 0.87, WINDOW, since, "peers", CREATED)
    for name, key, known in [("outage", WARD, True), ("outage-all", PROVINCE, False)]:
        s = Silence(key, T0 - timedelta(hours=2), 35.5, 2.2e-9, ("col-a",) if known else (), False,
                    timedelta(minutes=45), 17.25, known)  # fmt: skip
        out[name] = explain.silence_alert(s, 0.95, WINDOW, CREATED)
    holiday = Silence(WARD, T0 - timedelta(hours=3), 12.5, 2.2e-9, ("col-a",), False,
                      timedelta(hours=2, minutes=30), 4.5, True, 0.35)  # fmt: skip
    out["outage-holiday"] = explain.silence_alert(holiday, 0.95, WINDOW, CREATED)
    c = CollectorSilence("col-a", (WARD, PROVINCE), T0 - timedelta(minutes=40), 210.0)
    out["collector-silence"] = explain.collector_alert(c, 0.7, WINDOW, CREATED)
    for name, ok in [("endpoint-down", T0 - timedelta(hours=1)), ("endpoint-down-never", None)]:
        f = Failing(WARD, T0 - timedelta(minutes=30), 6, 0.0125, 3.1e-12, ok, "https://x/health",
                    "timeout" if ok else None, 503 if ok else None)  # fmt: skip
        out[name] = explain.probe_alert(f, 0.99, WINDOW, CREATED)
    for name, tally in [
        ("unsynced-dossiers", Tally(40, 12, T0 - timedelta(hours=5), T0 - timedelta(hours=3))),
        ("unsynced-dossiers-none", Tally(0, 0)),
    ]:
        backlog = Backlog(WARD, tally, 0.0125, 4.4e-8)
        out[name] = explain_sync.unsynced_alert(backlog, 0.8, WINDOW, CREATED)
    for name, ok, err, why in [
        ("sync-failing", T0 - timedelta(hours=6), "http_500", "portal refused"),
        ("sync-failing-none", None, None, None),
    ]:
        run = "run-7" if ok else None
        fc = FailingCommune(WARD, T0 - timedelta(hours=2), 5, 0.02, 1e-9, ok, err, why, run)
        out[name] = explain_sync.sync_failing_alert(fc, 0.9, WINDOW, CREATED)
    for name, last in [
        ("sync-job-stopped", T0 - timedelta(hours=3)),
        ("sync-job-stopped-none", None),
    ]:
        heard = ("col-b",) if last else ()
        job = StoppedJob(PROVINCE, last, 4, timedelta(minutes=30), 0.01, 3e-8, heard)
        out[name] = explain_sync.sync_stopped_alert(job, 0.85, WINDOW, CREATED)
    found = [
        _finding("e5xx", 40.0, 2.5),
        _finding("failed", 55.0, 7.25),
        _finding("count", 4.0, 90.5),
    ]
    for a in live_alerts.alerts_of(found, WINDOW, CREATED):
        out[f"stream-{a.rule.id}"] = a
    out["stream-drop"] = live_alerts.alerts_of([_finding("count", 4.0, 90.5)], WINDOW, CREATED)[0]
    return out


def documents() -> bytes:
    docs = {name: a.to_doc() for name, a in sorted(cases().items())}
    return orjson.dumps(docs, option=orjson.OPT_INDENT_2) + b"\n"


def test_every_kind_stores_the_same_document_as_before() -> None:
    assert documents() == FIXTURE.read_bytes()


def test_a_holiday_silence_says_the_scale_it_was_judged_at() -> None:
    """silence.holiday_scale in the alert's text and evidence, only on a holiday."""
    alerts = cases()
    holiday, plain = alerts["outage-holiday"], alerts["outage"]
    assert "Public holiday: expected volume x0.35 in the holiday's hours" in holiday.summary
    assert "in the 6 h before the silence" in holiday.summary
    assert holiday.explanation["holiday_scale"] == 0.35
    assert "holiday" not in plain.summary.lower()
    assert plain.explanation["holiday_scale"] is None


def test_every_stored_explanation_reads_back_through_its_model() -> None:
    stored = orjson.loads(FIXTURE.read_bytes())
    for name, doc in stored.items():
        explanation = doc["alert"]["explanation"]
        typed = parse_explanation(explanation)
        assert typed is not None, name
        assert orjson.dumps(typed.doc()) == orjson.dumps(explanation), name
        assert AnomalyKind.of_rule(doc["rule"]["id"]) == typed.kind, name
    assert parse_explanation({"kind": "not-a-kind"}) is None
    assert parse_explanation({"kind": ["outage"]}) is None
    assert parse_explanation({"kind": "outage", "level": "province"}) is None


if __name__ == "__main__":
    sys.stdout.buffer.write(documents())
