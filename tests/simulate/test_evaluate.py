"""``soc simulate evaluate`` scores the alerts in Elasticsearch against a run's ground truth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from elasticsearch import Elasticsearch
from typer.testing import CliRunner

from soc.alerts.models import Alert, Detector, Place, RuleRef, Severity, Window
from soc.cli import app
from soc.es.indices import Indices
from soc.localities import catalogue
from soc.simulate import labels as labels_file
from soc.simulate import scenarios
from soc.simulate.evaluate import evaluate, fetch_alerts

DEMO = Path(__file__).resolve().parents[2] / "scenarios" / "demo.yaml"
ORIGIN = datetime(2026, 11, 23, tzinfo=UTC) - timedelta(hours=7)


def alert(rule: str, start: datetime, province: str, service: str | None,
          ward: str | None = None) -> Alert:  # fmt: skip
    cat = catalogue()
    prov = cat.province(province)
    ward_name = cat.ward(ward).name if ward else None
    return Alert(
        detector=Detector.SIGMA, rule=RuleRef(id=rule, name=rule, level=Severity.HIGH),
        severity=Severity.HIGH, title=rule, window=Window(start=start, end=start +
        timedelta(minutes=5)), place=Place(province_code=prov.code, province_name=prov.name,
        ward_code=ward, ward_name=ward_name), service=service, group={"rule": rule},
        created=start + timedelta(minutes=6),
    )  # fmt: skip


def test_detected_missed_false_and_time_to_detect(
    es: Elasticsearch, ready: Indices, tmp_path: Path
) -> None:
    found = {s.id: s for s in scenarios.load(DEMO, catalogue(), ORIGIN)}
    outage, attack, silent = (found["vneid-outage-hanoi"], found["web-attack-hue"],
                              found["silent-laichau"])  # fmt: skip
    path = tmp_path / "labels.jsonl"
    labels_file.write(path, [*outage.labels(), *attack.labels(), *silent.labels()])
    assert attack.where.ward is not None
    alerts = [
        # the outage, seen 10 minutes in (window ends at +15m)
        alert("vneid-failures", outage.start + timedelta(minutes=10), "01", "vneid"),
        # the right service in the wrong province: a false alert
        alert("vneid-failures", outage.start, "48", "vneid"),
        # the attack, seen in its commune
        alert("web-sqli", attack.start + timedelta(minutes=1), "46", "web-portal",
              attack.where.ward.code),
        # the wrong service during the attack, same province: false
        alert("otp-brute", attack.start, "46", "otp-gateway"),
    ]  # fmt: skip
    for item in alerts:
        es.create(index=ready.alerts, id=item.id, document=item.to_doc())
    es.indices.refresh(index=ready.alerts)

    seen = fetch_alerts(es, ready, None, None)
    assert len(seen) == 4
    result = evaluate(labels_file.read(path), seen, grace=timedelta(minutes=30))
    by_id = {o.scenario_id: o for o in result.outcomes}
    assert by_id["vneid-outage-hanoi"].detected
    assert by_id["vneid-outage-hanoi"].time_to_detect == timedelta(minutes=15)
    assert by_id["web-attack-hue"].time_to_detect == timedelta(minutes=6)
    assert not by_id["silent-laichau"].detected
    assert len(result.false_alerts) == 2
    assert result.precision == 0.5
    assert result.recall == 2 / 3
    assert result.false_by_rule() == {"vneid-failures": 1, "otp-brute": 1}

    runner = CliRunner()
    env = {"SOC_ES_URL": es_url_of(es), "SOC_INDEX_PREFIX": ready.prefix}
    shown = runner.invoke(app, ["simulate", "evaluate", "--labels", str(path), "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    assert '"false_alerts": 2' in shown.output
    assert '"recall": 0.6666666666666666' in shown.output


def es_url_of(es: Elasticsearch) -> str:
    node = es.transport.node_pool.get()
    return str(node.base_url)


def test_a_broken_labels_file_is_an_error_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text('{"scenario_id": "a"}\n')
    runner = CliRunner()
    shown = runner.invoke(app, ["simulate", "evaluate", "--labels", str(path)],
                          env={"SOC_ES_URL": "http://127.0.0.1:1"})  # fmt: skip
    assert shown.exit_code == 1
    assert f"{path}:1: not a valid label" in shown.output.replace("\n", "")
