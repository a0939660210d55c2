"""What an alert of the new rules tells an incident's cause: failure class, entities (IPs,
accounts), communes and service, in ``alert.explanation`` (docs/detection.md, "An alert")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from detectors.base import Window
from detectors.sigma.alerting import to_alert
from detectors.sigma.compiler import load_rules
from detectors.sigma.search import Finding
from soc.es.indices import Indices

RULES = load_rules()
NOW = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
WINDOW = Window(NOW, datetime(2026, 12, 4, 3, 1, tzinfo=UTC))


def _sample(n: int, **fields: object) -> dict[str, object]:
    doc: dict[str, Any] = {"_id": f"e{n}", "_index": "soc-events-2026.12.04"}
    for dotted, value in fields.items():
        node = doc
        *parents, leaf = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return doc


def test_a_stuffing_alert_names_the_ip_the_accounts_the_commune_and_the_service() -> None:
    rule = RULES.get("login_credential_stuffing")
    samples = tuple(
        _sample(n, source__ip="203.0.113.9", user__name=f"victim{n}", service__name="vneid",
                locality__province__code="12", locality__ward__code="03637",
                error__type="auth_rejected")
        for n in range(5)
    )  # fmt: skip
    finding = Finding(WINDOW, {"source.ip": "203.0.113.9", "service.name": "vneid"}, 12, samples,
                      events=12, detail={"values": [f"victim{n}" for n in range(12)],
                                         "wards": ["03637"]})  # fmt: skip
    alert = to_alert(rule, finding, Indices(), NOW)
    why = alert.explanation
    assert alert.entity is not None
    assert alert.entity.type == "source.ip"
    assert alert.entity.value == "203.0.113.9"
    assert alert.service == "vneid"
    assert alert.place is not None
    assert alert.place.ward_name == "Xã Mường Kim"
    assert why["failure_class"] == "auth_rejected"
    assert why["entities"]["source.ip"] == ["203.0.113.9"]
    assert why["entities"]["user.name"][:3] == ["victim0", "victim1", "victim2"]
    assert len(why["entities"]["user.name"]) == 12
    assert why["communes"] == ["03637"]
    assert "victim0" in alert.summary


def test_an_outage_alert_names_its_classes_and_its_test() -> None:
    rule = RULES.get("service_failure_ratio")
    test = {"failures": 3, "total": 3, "ratio": 1.0, "baseline_ratio": 0.0025,
            "p_value": 1.6e-8, "threshold": 1.5e-5}  # fmt: skip
    finding = Finding(WINDOW, {"service.name": "vneid", "locality.province.code": "12"}, 3, (),
                      events=3, detail={"classes": {"timeout": 2, "server_error": 1},
                                        "ratio": test})  # fmt: skip
    alert = to_alert(rule, finding, Indices(), NOW)
    assert alert.explanation["failure_class"] == "timeout"
    assert alert.explanation["failure_classes"] == {"timeout": 2, "server_error": 1}
    assert alert.explanation["ratio"]["baseline_ratio"] == 0.0025
    assert alert.entity is not None
    assert alert.entity.type == "service.name", "no IP or account: the service"
    assert alert.summary.startswith("3 of 3 events failed (2 timeout, 1 server_error): 100%")
