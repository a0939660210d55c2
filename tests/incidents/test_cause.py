"""The cause of an alert: which fields it is read from, and the fallbacks new rules get."""

from __future__ import annotations

from soc.alerts.anomaly import RULE_PREFIX, AnomalyKind
from soc.alerts.models import Detector, Entity, RuleRef, Severity
from soc.incidents.cause import cause_map, cause_of, failure_class
from tests.incidents.factory import make_alert, wards

PROBE_DOWN = "9bb2015e-a5db-4e90-953b-519af6d705f5"


def test_the_mapping_is_valid_and_names_only_declared_classes() -> None:
    mapping = cause_map()
    assert {"down", "errors", "auth-failure", "sync", "web-attack"} <= set(mapping.classes)
    assert mapping.failure_class(PROBE_DOWN, "web-portal") == "down"
    assert mapping.failure_class("anomaly-failure-surge", "vneid") == "auth-failure"
    assert mapping.failure_class("anomaly-failure-surge", "payment") == "errors"


def test_every_anomaly_kind_has_a_failure_class_and_the_mapping_names_no_other() -> None:
    mapping = cause_map()
    mapped = {r for r in mapping.rules if r.startswith(RULE_PREFIX)}
    assert mapped == {k.rule_id for k in AnomalyKind}
    assert all(mapping.failure_class(k.rule_id, None) in mapping.classes for k in AnomalyKind)


def test_an_unknown_rule_is_a_class_of_its_own_and_a_tag_or_the_alert_can_name_one() -> None:
    plain = make_alert(rule="brand-new-rule")
    assert failure_class(plain) == "rule:brand-new-rule"
    tagged = plain.model_copy(
        update={"rule": RuleRef(id="brand-new-rule", name="x", level=Severity.HIGH,
                                tags=("attack.t1110", "soc.failure.auth-failure"))}
    )  # fmt: skip
    assert failure_class(tagged) == "auth-failure"
    told = plain.model_copy(update={"explanation": {"failure_class": "down"}})
    assert failure_class(told) == "down"
    # The events' error.type, as the Sigma alerting reports it, is translated to a class.
    for error_type, expected in (("timeout", "down"), ("auth_rejected", "auth-failure"),
                                 ("server_error", "errors")):  # fmt: skip
        seen = plain.model_copy(update={"explanation": {"failure_class": error_type}})
        assert failure_class(seen) == expected


def test_only_an_entity_the_detector_grouped_by_is_part_of_the_cause() -> None:
    [w] = wards("04", 1)
    grouped = make_alert(province="04", ward=w, entity="0912345678")
    assert cause_of(grouped).entity == "user.name=0912345678"
    from_sample = grouped.model_copy(
        update={"entity": Entity(type="source.ip", value="203.0.113.9"), "group": {"ward": w}}
    )
    assert cause_of(from_sample).entity is None
    anomaly = grouped.model_copy(
        update={"detector": Detector.ANOMALY, "entity": Entity(type="service", value="vneid"),
                "group": {"service": "vneid", "ward": w}}
    )  # fmt: skip
    assert cause_of(anomaly).entity is None
    assert cause_of(anomaly).place_key == cause_of(from_sample).place_key
    assert cause_of(grouped).key != cause_of(from_sample).key
    other_commune = make_alert(province="04", ward=wards("04", 2)[1], entity="0912345678")
    assert cause_of(other_commune).key != cause_of(grouped).key
    assert cause_of(other_commune).province_key == cause_of(grouped).province_key
