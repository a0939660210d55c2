"""soc's ratio extension of Sigma correlations: a broken ``soc:`` block names its file and line;
the binomial test fires on a quiet place's failures in a row and not on a busy place's usual
failures; baselines shrink a place with little history towards all places; findings of several
ratio rules judged together are each counted on their own rule's population."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from elasticsearch import Elasticsearch

from detectors.base import Window, iso
from detectors.sigma.compiler import load_rules
from detectors.sigma.models import Ratio
from detectors.sigma.pipeline import RULES_DIR
from detectors.sigma.ratio import Baseline, ratio_test
from detectors.sigma.runner import Engine
from detectors.sigma.search import Tuning
from soc.es.indices import Indices
from soc.events.service import index_events
from soc.localities import catalogue

RATIO_FILE = RULES_DIR / "service" / "service-failure-ratio.correlation.yaml"


def _broken(tmp_path: Path, old: str, new: str) -> str:
    shutil.copytree(RULES_DIR / "service", tmp_path / "service")
    path = tmp_path / "service" / "service-failure-ratio.correlation.yaml"
    path.write_text(RATIO_FILE.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    errors = [str(e) for e in load_rules(tmp_path).errors if "soc extension" in str(e)]
    assert len(errors) == 1
    return errors[0]


def test_an_unknown_setting_names_the_file_and_the_line_of_the_block(tmp_path: Path) -> None:
    line = RATIO_FILE.read_text(encoding="utf-8").splitlines().index("soc:") + 1
    error = _broken(tmp_path, "    lift: 3", "    lfit: 3")
    assert (
        f"service-failure-ratio.correlation.yaml:{line}: soc extension: unknown ratio setting"
        in error
    )
    assert "'lfit'" in error


def test_a_population_rule_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    error = _broken(tmp_path, "of: service_request", "of: service_requests")
    assert "ratio `of` names unknown rule 'service_requests'" in error


def test_a_bad_number_is_refused(tmp_path: Path) -> None:
    assert "alpha" in _broken(tmp_path, "alpha: 2.0e-4", "alpha: 2")


def test_the_population_rule_raises_no_alert_of_its_own() -> None:
    rules = load_rules()
    assert rules.get("service_request").alerts is False
    assert rules.get("service_failure_ratio").ratio is not None


RATIO = Ratio(of="x", of_query="*", within=("service.name",), baseline_by=("service.name",))


def test_two_failures_in_a_row_are_evidence_in_a_quiet_place_not_in_a_busy_one() -> None:
    assert ratio_test(RATIO, 2, 2, p0=0.002, per_hour=13)["fired"]
    assert not ratio_test(RATIO, 2, 2, p0=0.002, per_hour=600)["fired"]
    assert ratio_test(RATIO, 3, 3, p0=0.002, per_hour=600)["fired"]


def test_a_busy_hour_at_the_usual_rate_is_quiet_and_an_outage_is_not() -> None:
    assert not ratio_test(RATIO, 9, 3000, p0=0.003, per_hour=6000)["fired"]
    assert not ratio_test(RATIO, 20, 3000, p0=0.003, per_hour=6000)["fired"], "below min_ratio"
    assert ratio_test(RATIO, 400, 3000, p0=0.003, per_hour=6000)["fired"]


def test_a_place_with_little_history_borrows_the_rate_of_all_places() -> None:
    ratio = Ratio(of="x", of_query="*", within=("locality.province.code",),
                  baseline_by=("locality.province.code",), prior_weight=100)  # fmt: skip
    totals: dict[tuple[str, ...], int] = {("01",): 100_000, ("12",): 10}
    failures: dict[tuple[tuple[str, ...], str], int] = {(("01",), ""): 500, (("12",), ""): 5}
    baseline = Baseline(ratio, datetime(2026, 12, 1, tzinfo=UTC), totals, failures)
    assert abs(baseline.rate(("01",), "") - 0.005) < 1e-4
    assert baseline.rate(("12",), "") < 0.06, "5 failures of 10 do not make a 50% baseline"
    assert baseline.rate(("99",), "") > 0.004, "no history: the rate of all places"


def test_by_class_judges_a_finding_against_the_rate_of_the_classes_it_holds() -> None:
    ratio = Ratio(of="x", of_query="*", within=("locality.province.code",),
                  baseline_by=("locality.province.code",), by_class=True)  # fmt: skip
    place: tuple[str, ...] = ("01",)
    classes: dict[tuple[tuple[str, ...], str], int] = {
        (place, "timeout"): 300,
        (place, "server_error"): 200,
    }
    baseline = Baseline(ratio, datetime(2026, 12, 1, tzinfo=UTC), {place: 100_000},
                        {(place, ""): 500}, classes)  # fmt: skip
    assert abs(baseline.rate(place, "") - 0.005) < 1e-4, "no class seen: every class counted"
    assert abs(baseline.rate(place, "", ["timeout"]) - 0.003) < 1e-4
    assert baseline.rate(place, "", ["refused"]) == ratio.floor, "never refused: the floor"
    assert abs(baseline.rate(place, "", ["server_error", "timeout"]) - 0.005) < 1e-4
    # Two refused connections are evidence at 120 requests an hour; two failures of any class
    # (or two timeouts) are not.
    assert ratio_test(ratio, 2, 2, baseline.rate(place, "", ["refused"]), per_hour=120)["fired"]
    assert not ratio_test(ratio, 2, 2, baseline.rate(place, "", ["timeout"]), 120)["fired"]
    assert not ratio_test(ratio, 2, 2, baseline.rate(place, ""), per_hour=120)["fired"]


def test_by_class_must_be_a_boolean(tmp_path: Path) -> None:
    error = _broken(tmp_path, "    lift: 3", "    lift: 3\n    by_class: sometimes")
    assert "ratio `by_class` must be true or false" in error


def _vneid(at: datetime, province: str, failure: str | None = None) -> dict[str, object]:
    doc: dict[str, object] = {
        "@timestamp": iso(at),
        "event": {"kind": "event", "action": "login", "ingested": iso(at + timedelta(seconds=1)),
                  "outcome": "failure" if failure else "success"},
        "service": {"name": "vneid"},
        "locality": {"province": {"code": province, "name": catalogue().province(province).name}},
    }  # fmt: skip
    if failure:
        doc["error"] = {"type": failure}
    return doc


def test_a_live_engine_learns_the_baseline_from_the_store_and_alerts_once(
    es: Elasticsearch, ready: Indices
) -> None:
    t0 = datetime(2026, 11, 20, 20, 0, tzinfo=UTC)  # 03:00 in Viet Nam
    history = [_vneid(t0 - timedelta(minutes=2 * k), "12", "timeout" if k % 300 == 7 else None)
               for k in range(1, 720)]  # fmt: skip
    busy = [_vneid(t0 + timedelta(seconds=2 * k), "01", "timeout" if k % 300 == 9 else None)
            for k in range(900)]  # fmt: skip
    outage = [_vneid(t0 + timedelta(seconds=60 + 90 * k), "12", "timeout") for k in range(4)]
    index_events(es, ready, [*history, *busy, *outage], refresh=True)
    engine = Engine(es, ready, [load_rules().get("service_failure_ratio")], start=t0,
                    settle=timedelta(seconds=5), early=True)  # fmt: skip
    for second in range(5, 12 * 60, 5):
        engine.tick(t0 + timedelta(seconds=second))
    assert engine.judge.baseline_searches == 1, "one baseline search for the hour, then cached"
    es.indices.refresh(index=ready.alerts)
    hits = es.search(index=ready.alerts, size=100)["hits"]["hits"]
    provinces = {h["_source"]["locality"]["province"]["code"] for h in hits}
    assert provinces == {"12"}, "Lai Châu's outage, not Hà Nội's busy hour"
    first = min(hits, key=lambda h: h["_source"]["@timestamp"])["_source"]
    assert first["@timestamp"] < iso(t0 + timedelta(seconds=60 + 90 * 2 + 15))
    assert first["alert"]["explanation"]["failure_class"] == "timeout"
    assert first["alert"]["explanation"]["ratio"]["baseline_until"] == iso(t0)


def _otp_send(at: datetime, province: str) -> dict[str, object]:
    """A failed OTP SMS through Viettel."""
    return {
        "@timestamp": iso(at), "service": {"name": "otp-gateway"},
        "event": {"kind": "event", "action": "otp-send", "outcome": "failure",
                  "ingested": iso(at + timedelta(seconds=1))},
        "error": {"type": "delivery", "code": "SMS_DELIVERY_FAILED"},
        "soc": {"otp": {"carrier": "viettel"}},
        "locality": {"province": {"code": province, "name": catalogue().province(province).name}},
    }  # fmt: skip


def test_two_ratio_rules_judged_in_one_tick_each_count_their_own_population(
    es: Elasticsearch, ready: Indices
) -> None:
    """A tick judges the findings of every ratio rule together. Three of three Viettel SMS
    failing is a carrier outage; counted against the province's every request (the population
    of service_failure_ratio, whose findings were judged in the same population search), it was
    3 of 7 and dropped (bench/scenario_ttd.py: Đồng Nai's carrier failure at 14 min, not 4)."""
    t0 = datetime(2026, 11, 20, 20, 30, tzinfo=UTC)  # no history: the prior's rate
    logins = [_vneid(t0 - timedelta(minutes=10) + timedelta(seconds=15 * k), "12")
              for k in range(32)]  # fmt: skip
    timeouts = [_vneid(t0 + timedelta(seconds=s), "12", "timeout") for s in (-90, -60, -30, 10)]
    sends = [_otp_send(t0 + timedelta(seconds=s), "12") for s in (-100, -40, 20)]
    index_events(es, ready, [*logins, *timeouts, *sends], refresh=True)
    rules = [load_rules().get(name)
             for name in ("service_failure_ratio", "otp_send_failure_carrier")]  # fmt: skip
    engine = Engine(es, ready, rules)
    window = Window(t0, t0 + timedelta(minutes=1))
    outcomes = engine.evaluate([(rule, window, Tuning()) for rule in rules])
    assert [o.error for o in outcomes] == [None, None]
    carrier = [f.detail["ratio"] for f in outcomes[1].findings]
    assert outcomes[0].findings, "the VNeID timeouts"
    assert carrier, "the carrier's failures, on the carrier's own sends"
    assert carrier[-1]["total"] == 3
