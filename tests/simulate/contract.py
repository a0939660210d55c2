"""An independent reading of docs/log-formats.md, to hold the simulator's output to the contract.

Deliberately not the simulator's own code: if the simulator drifted from the document, comparing
it with itself would prove nothing.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

COMBINED = re.compile(
    r'^(?P<ip>\S+) - (?P<user>\S+) \[(?P<time>[^\]]+)\] "(?P<method>[A-Z]+) (?P<target>\S+) '
    r'HTTP/(?P<version>[0-9.]+)" (?P<status>\d{3}) (?P<bytes>\d+|-) "(?P<referrer>[^"]*)" '
    r'"(?P<agent>[^"]*)"(?: (?P<rt>\d+\.\d+))?$'
)
APP_KEYS = {"ts", "system", "host", "level", "event", "result", "error_code", "msg", "user", "ip",
            "latency_ms", "request_id", "province", "ward"}  # fmt: skip
EXTRA_KEYS = {
    "vneid": {"step"},
    "otp-gateway": {"carrier", "purpose"},
    "one-stop-shop": {"procedure_code", "dossier_id"},
    "national-db": {"db", "operation"},
    "portal-sync": {"target", "records", "dossier_id", "run_id", "units_synced", "units_failed"},
    "payment": set(),
}
EVENTS = {
    "vneid": {"login"},
    "otp-gateway": {"otp_send", "otp_verify"},
    "one-stop-shop": {"dossier_receive", "dossier_process", "dossier_return"},
    "national-db": {"db_lookup"},
    "portal-sync": {"dossier_sync", "sync_run"},
    "payment": {"payment"},
}


def parse_access(line: str) -> dict[str, Any]:
    match = COMBINED.match(line)
    assert match, f"not a combined access-log line: {line!r}"
    when = datetime.strptime(match["time"], "%d/%b/%Y:%H:%M:%S %z").astimezone(UTC)
    path, _, query = match["target"].partition("?")
    return {
        "timestamp": when, "ip": match["ip"], "user": match["user"],
        "method": match["method"], "path": path, "query": query or None,
        "status": int(match["status"]), "bytes": int(match["bytes"]),
        "referrer": match["referrer"], "agent": match["agent"],
        "duration_ns": round(float(match["rt"]) * 1000) * 1_000_000,
    }  # fmt: skip


def parse_app(line: str) -> dict[str, Any]:
    body = json.loads(line)
    system = body["system"]
    assert set(body) <= APP_KEYS | EXTRA_KEYS[system], f"keys outside the contract: {body}"
    assert body["event"] in EVENTS[system]
    assert body["level"] in {"debug", "info", "warn", "error"}
    assert body["result"] in {"success", "failure"}
    assert datetime.fromisoformat(body["ts"]).utcoffset() is not None
    if system == "otp-gateway":
        assert body["carrier"] in {"viettel", "vinaphone", "mobifone", "itelecom", "vietnamobile"}
        assert body["purpose"] in {"login", "sign"}
    if system == "vneid":
        assert body["step"] in {"authorize", "token", "userinfo"}
    if body["event"] == "sync_run":
        # The province's summary (no ward, counts) or one commune it could not sync (a reason).
        assert body["run_id"]
        if "ward" in body:
            assert body["result"] == "failure"
            assert body["error_code"]
            assert body["msg"]
        else:
            assert body["result"] == "success"
            assert isinstance(body["units_synced"], int)
            assert isinstance(body["units_failed"], int)
    return dict(body)
