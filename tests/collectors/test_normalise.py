"""Normalisation: the simulator's lines become exactly the simulator's expected ECS events, and bad
input is dead-lettered or flagged deliberately, never dropped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.models import RawLine, SourceType
from collectors.normalise import Limits, Normaliser
from collectors.parsers import parse_auto, parse_syslog
from soc.es.indices import Indices
from soc.inventory import loads_inventory
from soc.localities import catalogue
from soc.services import Service
from soc.timeutil import iso

NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)
INVENTORY = """\
systems:
  - id: sim
    paths: ["**/{province}/{service}/{ward}.access.log", "**/{province}/{service}.access.log",
            "**/{province}/{service}.app.log"]
  - id: hn-gw
    service: otp-gateway
    province: "01"
    hosts: ["gw-7"]
"""


def _normaliser() -> Normaliser:
    return Normaliser(loads_inventory(INVENTORY), Indices("t"), "c1", now=lambda: NOW)


def _raw(data: bytes, path: str | None = "/l/01/web-portal.access.log", offset: int = 0) -> RawLine:
    return RawLine("files", SourceType.FILE, data, NOW, path=path, offset=offset)


def _strip_collector_fields(doc: dict[str, Any]) -> dict[str, Any]:
    out = orjson.loads(orjson.dumps(doc))
    out["event"].pop("ingested")
    for key in ("source", "collector", "system"):
        out["soc"].pop(key)
    if not out["soc"]:
        del out["soc"]
    out.pop("log", {}).get("file")
    if "log" in doc and set(doc["log"]) - {"file", "offset"}:
        out["log"] = {k: v for k, v in doc["log"].items() if k not in ("file", "offset")}
    return dict(out)


def test_simulated_lines_normalise_to_the_contract() -> None:
    traffic = pytest.importorskip("soc.simulate.traffic")
    formats = pytest.importorskip("soc.simulate.formats")
    sinks = pytest.importorskip("soc.simulate.sinks")
    norm = _normaliser()
    checked = 0
    for service in Service:
        records = traffic.hour_records(catalogue(), 7, "01", service, NOW, 3.0)[:20]
        for n, rec in enumerate(records):
            path = "/sim/" + sinks.relative_path(rec)
            action = norm.normalise(_raw(formats.to_line(rec).encode(), path, n), parse_auto)
            assert action.kind == "event", action.document
            assert _strip_collector_fields(dict(action.document)) == formats.to_ecs(rec)
            assert action.index == "t-events-" + f"{rec.at.astimezone(UTC):%Y.%m.%d}"
            checked += 1
    assert checked > 50


def test_same_line_same_offset_same_id_other_offset_other_id() -> None:
    line = b'1.2.3.4 - - [23/Nov/2026:09:15:02 +0700] "GET / HTTP/1.1" 200 1 "-" "x"'
    norm = _normaliser()
    a, b, c = (norm.normalise(_raw(line, offset=o), parse_auto) for o in (0, 0, 99))
    assert a.id == b.id != c.id
    later = Normaliser(
        loads_inventory(INVENTORY), Indices("t"), "c1", now=lambda: NOW + timedelta(hours=1)
    ).normalise(_raw(line), parse_auto)
    assert later.id == a.id  # event.ingested does not change the id


@pytest.mark.parametrize(
    ("data", "stage", "reason"),
    [
        (b"\xff\xfe binary \x00 garbage", "decode", "invalid UTF-8 at byte 0"),
        (b"ok text \x00 with NUL", "decode", "NUL byte"),
        (b"x" * 1_000_000, "read", "line of 1000000 bytes exceeds"),
        (b'{"ts": "2026-11-23T09:15:02+07:00", "system": "vneid", "eve', "parse", "JSON"),
        (b'{"ts": "2026-11-23T09:15:02+07:00", "system": "mail"}', "parse", "not a watched"),
    ],
)
def test_bad_input_becomes_a_dead_letter(data: bytes, stage: str, reason: str) -> None:
    action = _normaliser().normalise(_raw(data, offset=5), parse_auto)
    assert action.kind == "deadletter"
    assert action.index == "t-deadletter"
    letter = action.document["deadletter"]
    assert letter["stage"] == stage
    assert reason in letter["reason"]
    assert letter["raw_bytes"] == len(data)
    assert letter["truncated"] == (len(data) > 32 * 1024)
    assert action.document["log"] == {"file": {"path": "/l/01/web-portal.access.log"}, "offset": 5}
    if stage == "decode" and data.startswith(b"\xff"):
        assert "raw_base64" in letter


def test_no_locality_is_a_dead_letter_unknown_code_falls_back_flagged() -> None:
    norm = _normaliser()
    line = b'{"ts": "2026-11-23T09:15:02+07:00", "system": "vneid", "event": "login"}'
    lost = norm.normalise(_raw(line, path="/nowhere/app.log"), parse_auto)
    assert lost.kind == "deadletter"
    assert "no locality" in lost.document["deadletter"]["reason"]
    odd = b'{"ts": "2026-11-23T09:15:02+07:00", "system": "vneid", "province": "99"}'
    kept = norm.normalise(_raw(odd, path="/sim/01/vneid.app.log"), parse_auto)
    assert kept.kind == "event"
    assert kept.document["soc"]["flags"] == ["locality_unknown"]
    assert kept.document["locality"]["province"]["code"] == "01"


def test_timestamps_missing_future_and_ancient_are_kept_and_flagged() -> None:
    norm = _normaliser()
    for ts, flag in (
        ("2031-01-01T00:00:00Z", "timestamp_future"),
        ("1970-01-01T00:00:00Z", "timestamp_too_old"),
    ):
        line = orjson.dumps({"ts": ts, "system": "payment", "event": "payment"})
        action = norm.normalise(_raw(line, path="/sim/01/payment.app.log"), parse_auto)
        assert action.document["soc"]["flags"] == [flag]
        assert action.document["@timestamp"] == "2026-11-23T03:00:00.000Z"
        assert action.document["soc"]["original_timestamp"] == ts.replace("Z", ".000Z")
    raw = RawLine("sys", SourceType.SYSLOG, b"<13>no stamp at all", NOW, peer="gw-7")
    action = norm.normalise(raw, parse_syslog)
    assert action.kind == "event"
    assert action.document["soc"]["flags"] == ["timestamp_missing"]
    assert action.document["service"] == {"name": "otp-gateway"}
    later = RawLine(
        "sys", SourceType.SYSLOG, b"<13>no stamp at all", NOW + timedelta(1), peer="gw-7"
    )
    assert norm.normalise(later, parse_syslog).id == action.id  # receive time is not in the id


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9998, 12, 30), timezones=st.timezones()
    )
)
def test_iso_stamps_are_utc_milliseconds(when: datetime) -> None:
    """The fast ``iso`` writes what ``isoformat`` would, in UTC with milliseconds and ``Z``."""
    expected = when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert iso(when) == expected


def test_archived_source_keeps_old_timestamps_only_clearly_invalid_ones_replaced() -> None:
    limits = Limits(archived=frozenset({"import"}))
    norm = Normaliser(loads_inventory(INVENTORY), Indices("t"), "c1", limits, now=lambda: NOW)
    old = orjson.dumps({"ts": "2023-10-01T08:00:00Z", "system": "payment", "event": "payment"})
    raw = RawLine("import", SourceType.FILE, old, NOW, path="/sim/01/payment.app.log", offset=0)
    action = norm.normalise(raw, parse_auto)
    assert action.document["@timestamp"] == "2023-10-01T08:00:00.000Z"  # its own time
    assert action.document["event"]["ingested"] == iso(NOW)  # when it was received
    assert action.document["soc"]["flags"] == ["imported"]
    assert action.index == "t-events-2023.10.01"
    live = norm.normalise(raw._replace(source_id="files"), parse_auto)
    assert live.document["soc"]["flags"] == ["timestamp_too_old"]  # a live source: receive time
    for ts, flag in (("1970-01-01T00:00:00Z", "timestamp_too_old"),
                     ("2031-01-01T00:00:00Z", "timestamp_future")):  # fmt: skip
        bad = orjson.dumps({"ts": ts, "system": "payment", "event": "payment"})
        doc = norm.normalise(raw._replace(data=bad), parse_auto).document
        assert doc["@timestamp"] == iso(NOW)
        assert doc["soc"]["flags"] == sorted(["imported", flag])
        assert doc["soc"]["original_timestamp"] == ts.replace("Z", ".000Z")


def test_source_flags_and_source_errors() -> None:
    norm = _normaliser()
    line = b'{"ts": "2026-11-23T09:15:02+07:00", "system": "vneid", "event": "login"}'
    raw = _raw(line, path="/sim/01/vneid.app.log")._replace(flags=("line_unterminated",))
    assert norm.normalise(raw, parse_auto).document["soc"]["flags"] == ["line_unterminated"]
    broken = norm.normalise(raw._replace(error="octet count 999999999 over 262144"), parse_auto)
    assert broken.kind == "deadletter"
    assert broken.document["deadletter"]["reason"] == "octet count 999999999 over 262144"
