"""The alert of one finding of a Sigma rule or correlation: who, where, when, how many, why.

Every alert carries its place (``locality``), its service, and, in ``group``, the correlation's
group-by values. For the cause of an incident (service x failure class x locality x entity) the
alert also says, in ``alert.explanation``: ``failure_class`` (``error.type`` of its events:
``timeout``, ``server_error``, ``auth_rejected`` ...; the most frequent one when they are
several), ``failure_classes`` (count per class, where the rule counts them), ``entities`` (the
source IPs and accounts involved, the grouped one first), ``communes`` (ward codes seen) and,
for a ratio rule, ``ratio`` (failures, total, observed and baseline ratio, p-value). ``entity``
is the grouped IP or account, else the service. This module must not do I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from detectors.sigma.models import Rule
from detectors.sigma.search import Finding
from soc import timezones
from soc.alerts.models import Alert, Detector, Entity, Place, RuleRef
from soc.errors import UnknownLocalityError
from soc.es.indices import Indices
from soc.localities import catalogue

#: Group-by fields that are not what an alert is about (its place, service, failure class).
_NOT_ENTITIES = {"locality.province.code", "locality.ward.code", "service.name", "error.type"}
#: Fields naming who is involved, listed in ``explanation.entities``.
_ENTITY_FIELDS = ("source.ip", "user.name")


def to_alert(rule: Rule, finding: Finding, indices: Indices, now: datetime) -> Alert:
    """The alert for one finding: who, where, when, how many, and samples to pivot to."""
    sample = finding.samples[0] if finding.samples else {}
    place = _place(finding.group, sample)
    service = finding.group.get("service.name") or _get(sample, "service.name")
    entity = _entity(rule, finding.group, sample)
    where = f" in {place.ward_name or place.province_name}" if place else ""
    explanation = {
        "kind": rule.kind.value,
        "rule_file": rule.where,
        "condition": str(rule.condition) if rule.condition else None,
        **_cause(rule, finding),
    }
    return Alert(
        detector=Detector.CORRELATION if rule.kind.is_correlation else Detector.SIGMA,
        rule=RuleRef(id=rule.id, name=rule.title, level=rule.level, tags=rule.tags),
        severity=rule.level,
        title=f"{rule.title}{where}"[:1024],
        summary=_summary(rule, finding, explanation),
        window=finding.window.for_alert(),
        place=place,
        service=str(service) if service else None,
        entity=entity,
        group=dict(finding.group),
        count=finding.count,
        explanation=explanation,
        event_ids=tuple(str(s["_id"]) for s in finding.samples),
        index_pattern=indices.events,
        created=now,
    )


def _cause(rule: Rule, finding: Finding) -> dict[str, Any]:
    """What the incident's cause is derived from: the failure class, the IPs and accounts, the
    communes; and a ratio rule's test."""
    out: dict[str, Any] = {}
    classes = Counter(finding.detail.get("classes") or
                      [str(v) for s in finding.samples for v in _all(s, "error.type")])  # fmt: skip
    failure = finding.group.get("error.type") or (classes.most_common(1)[0][0] if classes else None)
    if failure:
        out["failure_class"] = failure
    if "classes" in finding.detail:
        out["failure_classes"] = dict(finding.detail["classes"])
    entities: dict[str, list[str]] = {}
    for name in _ENTITY_FIELDS:
        seen = [finding.group[name]] if name in finding.group else []
        if rule.value_field == name:
            seen += [str(v) for v in finding.detail.get("values", ())]
        seen += [str(v) for s in finding.samples for v in _all(s, name)]
        if seen:
            entities[name] = list(dict.fromkeys(seen))[:20]
    if entities:
        out["entities"] = entities
    wards = list(finding.detail.get("wards", ())) or [
        str(v) for s in finding.samples for v in _all(s, "locality.ward.code")
    ]
    if wards:
        out["communes"] = list(dict.fromkeys(wards))[:20]
    if "ratio" in finding.detail:
        out["ratio"] = dict(finding.detail["ratio"])
    return out


def _summary(rule: Rule, finding: Finding, explanation: Mapping[str, Any]) -> str:
    # Read by people in Vietnam: Vietnam time, labelled (soc.timezones), not bare UTC.
    span = (f"between {timezones.vietnam(finding.window.start)} and "
            f"{timezones.vietnam(finding.window.end)}")  # fmt: skip
    test = explanation.get("ratio")
    if test:
        classes = explanation.get("failure_classes") or {}
        what = ", ".join(f"{n} {c}" for c, n in classes.items())
        what = what or explanation.get("failure_class", "failures")
        return (
            f"{test['failures']} of {test['total']} events failed ({what}): "
            f"{test['ratio']:.0%} against a baseline of {test['baseline_ratio']:.2%} "
            f"(binomial p = {test['p_value']:.2g}), {span}"
        )
    text = f"{finding.count} matching events ({rule.kind.value}) {span}"
    if rule.value_field and explanation.get("entities", {}).get(rule.value_field):
        named = ", ".join(explanation["entities"][rule.value_field][:5])
        text = (
            f"{finding.count} distinct {rule.value_field} ({named}"
            f"{', ...' if finding.count > 5 else ''}) in {finding.events} events {span}"
        )
    return text


def _all(doc: Mapping[str, Any], dotted: str) -> list[Any]:
    value = _get(doc, dotted)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _get(doc: Mapping[str, Any], dotted: str) -> Any:
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _place(group: Mapping[str, str], sample: Mapping[str, Any]) -> Place | None:
    province = group.get("locality.province.code") or _get(sample, "locality.province.code")
    ward = group.get("locality.ward.code")
    if ward is None and "locality.province.code" not in group:
        ward = _get(sample, "locality.ward.code")
    if not province:
        return None
    cat = catalogue()
    try:
        p = cat.province(str(province))
        w = cat.ward(str(ward), p) if ward else None
    except UnknownLocalityError:
        return Place(province_code=str(province), province_name=str(province))
    return Place(province_code=p.code, province_name=p.name,
                 ward_code=w.code if w else None, ward_name=w.name if w else None)  # fmt: skip


def _entity(rule: Rule, group: Mapping[str, str], sample: Mapping[str, Any]) -> Entity | None:
    for name, value in group.items():
        if name not in _NOT_ENTITIES:
            return Entity(type=name, value=value)
    if "service.name" in group:
        return Entity(type="service.name", value=group["service.name"])
    ip = _get(sample, "source.ip")
    return Entity(type="source.ip", value=str(ip)) if ip else None
