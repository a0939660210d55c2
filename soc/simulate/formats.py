"""Render simulated records as the watched systems log them, or as the ECS events collectors make.

The line formats and the ECS mapping are exactly those of ``docs/log-formats.md``; the tests check
both against that contract (and against the collectors' parsers when present). Nothing here picks
values or writes files: records come from ``traffic``/``scenarios``, sinks live in ``sinks``.
"""

from __future__ import annotations

from typing import Any

import orjson

from soc.errors import SimulationError
from soc.events.failures import classify
from soc.services import Service
from soc.simulate.models import AccessRecord, AppRecord, ProbeRecord, Record
from soc.simulate.profile import LOCAL
from soc.timeutil import iso

DATASETS: dict[Service, str] = {
    Service.VNEID: "vneid.auth",
    Service.OTP: "otp-gateway.sms",
    Service.ONE_STOP_SHOP: "one-stop-shop.app",
    Service.NATIONAL_DB: "national-db.lookup",
    Service.PORTAL_SYNC: "portal-sync.sync",
    Service.PAYMENT: "payment.app",
}
CATEGORIES: dict[Service, str] = {
    Service.VNEID: "authentication",
    Service.OTP: "authentication",
    Service.NATIONAL_DB: "database",
    Service.PORTAL_SYNC: "network",
}
# extra key of the JSON line -> dotted ECS field (docs/log-formats.md, "per system").
EXTRA_FIELDS: dict[str, str] = {
    "step": "soc.vneid.step",
    "carrier": "soc.otp.carrier",
    "purpose": "soc.otp.purpose",
    "procedure_code": "soc.procedure.code",
    "dossier_id": "soc.sync.dossier_id",
    "db": "soc.db.name",
    "operation": "soc.db.operation",
    "target": "soc.sync.target",
    "records": "soc.sync.records",
    "run_id": "soc.sync.run_id",
    "units_synced": "soc.sync.units_synced",
    "units_failed": "soc.sync.units_failed",
}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def to_line(record: Record) -> str:
    """The log line (without newline) the system would write for ``record``."""
    if isinstance(record, AccessRecord):
        return access_line(record)
    if isinstance(record, ProbeRecord):
        raise SimulationError("a probe result is the collector's own event, not a log line")
    return orjson.dumps(app_body(record)).decode()


def access_line(rec: AccessRecord) -> str:
    local = rec.at.astimezone(LOCAL)
    stamp = f"{local:%d}/{_MONTHS[local.month - 1]}/{local:%Y:%H:%M:%S} +0700"
    target = rec.path + (f"?{rec.query}" if rec.query else "")
    referrer = rec.referrer or "-"
    return (
        f'{rec.ip} - {rec.user or "-"} [{stamp}] "{rec.method} {target} HTTP/1.1" '
        f'{rec.status} {rec.size} "{_quote(referrer)}" "{_quote(rec.agent)}" {rec.seconds:.3f}'
    )


def _quote(text: str) -> str:
    # nginx escapes '"' and '\' in logged strings as \xHH; the simulator does the same.
    return text.replace("\\", "\\x5C").replace('"', "\\x22")


def app_body(rec: AppRecord) -> dict[str, Any]:
    """The JSON object of an application-log line, keys in the contract's order."""
    body: dict[str, Any] = {
        "ts": rec.at.astimezone(LOCAL).isoformat(timespec="milliseconds"),
        "system": rec.service.value,
        "host": rec.host,
        "level": rec.level,
        "event": rec.event,
        "result": rec.result,
    }
    optional = {
        "error_code": rec.error_code,
        "msg": rec.msg,
        "user": rec.user,
        "ip": rec.ip,
        "latency_ms": rec.latency_ms,
        "request_id": rec.request_id,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    body["province"] = rec.where.province.code
    if rec.where.ward is not None:
        body["ward"] = rec.where.ward.code
    body.update(dict(rec.extra))
    return body


def to_ecs(record: Record) -> dict[str, Any]:
    """The normalised event the collectors produce from ``to_line(record)`` (no ``ingested``)."""
    if isinstance(record, AccessRecord):
        return classify(access_ecs(record))
    if isinstance(record, ProbeRecord):
        return classify(probe_ecs(record))
    return classify(app_ecs(record))


def probe_ecs(rec: ProbeRecord) -> dict[str, Any]:
    """The event the probe collector writes for one check (collectors/sources/probe.py)."""
    event: dict[str, Any] = {
        "@timestamp": iso(rec.at),
        "event": {
            "kind": "metric",
            "category": ["web"],
            "type": ["info"],
            "dataset": "probe.http",
            "outcome": "success" if rec.up else "failure",
            "duration": round(rec.latency_ms * 1_000_000),
        },
        "service": {"name": rec.service.value},
        "url": {"full": rec.url},
        "soc": {
            "probe": {"target": rec.target, "up": rec.up, "latency_ms": round(rec.latency_ms, 3)}
        },
        **rec.where.to_ecs(),
    }
    if rec.status is not None:
        event["http"] = {"response": {"status_code": rec.status}}
    if rec.error is not None:
        event["error"] = {"message": rec.error}
    return event


def access_ecs(rec: AccessRecord) -> dict[str, Any]:
    # The access log has whole seconds: the event carries what the line carries, no more.
    at = rec.at.replace(microsecond=0)
    original = rec.path + (f"?{rec.query}" if rec.query else "")
    url: dict[str, Any] = {"original": original, "path": rec.path}
    if rec.query:
        url["query"] = rec.query
    http: dict[str, Any] = {
        "request": {"method": rec.method},
        "response": {"status_code": rec.status, "bytes": rec.size},
        "version": "1.1",
    }
    if rec.referrer:
        http["request"]["referrer"] = rec.referrer
    event: dict[str, Any] = {
        "@timestamp": iso(at),
        "event": {
            "kind": "event",
            "category": ["web"],
            "type": ["access"],
            "outcome": "failure" if rec.failed else "success",
            "dataset": f"{rec.service.value}.access",
            "duration": round(rec.seconds * 1000) * 1_000_000,
        },
        "service": {"name": rec.service.value},
        "source": {"ip": rec.ip},
        "http": http,
        "url": url,
        "user_agent": {"original": rec.agent},
        **rec.where.to_ecs(),
    }
    if rec.user:
        event["user"] = {"name": rec.user}
    return event


def app_ecs(rec: AppRecord) -> dict[str, Any]:
    event: dict[str, Any] = {
        "@timestamp": iso(rec.at),
        "event": {
            "kind": "event",
            "category": [CATEGORIES.get(rec.service, "web")],
            "action": rec.event.replace("_", "-"),
            "outcome": rec.result,
            "dataset": DATASETS[rec.service],
        },
        "service": {"name": rec.service.value},
        "host": {"name": rec.host},
        "log": {"level": rec.level},
        **rec.where.to_ecs(),
    }
    if rec.latency_ms is not None:
        event["event"]["duration"] = rec.latency_ms * 1_000_000
    if rec.error_code is not None:
        event["error"] = {"code": rec.error_code}
    if rec.msg is not None:
        event["message"] = rec.msg
    if rec.user is not None:
        event["user"] = {"name": rec.user}
    if rec.ip is not None:
        event["source"] = {"ip": rec.ip}
    if rec.request_id is not None:
        event["http"] = {"request": {"id": rec.request_id}}
    for key, value in rec.extra:
        _put(event, EXTRA_FIELDS[key], value)
    return event


def _put(doc: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        doc = doc.setdefault(part, {})
    doc[leaf] = value
