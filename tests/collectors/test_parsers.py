"""Parsers: the contract formats parse to the documented ECS fields; any input either parses or
raises ParseError (never another exception), which hypothesis checks on arbitrary text."""

from __future__ import annotations

import contextlib
import ipaddress
import json
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.parsers import PARSERS, parse_access, parse_app, parse_syslog
from collectors.parsers.access import parse_time
from collectors.parsers.app import from_object
from collectors.parsers.fields import is_ip
from soc.errors import ParseError

ACCESS = (
    '113.161.4.20 - citizen00042 [23/Nov/2026:09:15:02 +0700] "GET /dich-vu-cong?q=1 '
    'HTTP/1.1" 200 5123 "https://dichvucong.gov.vn/" "Mozilla/5.0 ..." 0.132'
)


def test_combined_access_line() -> None:
    p = parse_access(ACCESS)
    f = p.fields
    assert p.timestamp == datetime(2026, 11, 23, 2, 15, 2, tzinfo=UTC)
    assert f["source"] == {"ip": "113.161.4.20"}
    assert f["user"] == {"name": "citizen00042"}
    assert f["http"] == {
        "request": {"method": "GET", "referrer": "https://dichvucong.gov.vn/"},
        "response": {"status_code": 200, "bytes": 5123},
        "version": "1.1",
    }
    assert f["url"] == {"original": "/dich-vu-cong?q=1", "path": "/dich-vu-cong", "query": "q=1"}
    assert f["event"]["duration"] == 132_000_000
    assert f["event"]["outcome"] == "success"


def test_access_escapes_failures_and_garbage_requests() -> None:
    line = (
        '10.0.0.1 - - [01/Jan/2026:00:00:00 +0000] "\\x16\\x03\\x01" 400 0 "-" "say \\x22hi\\x22"'
    )
    p = parse_access(line)
    assert p.flags == ("request_malformed",)
    assert p.fields["url"]["original"] == "\x16\x03\x01"
    assert p.fields["user_agent"]["original"] == 'say "hi"'
    assert p.fields["event"]["outcome"] == "failure"
    assert "user" not in p.fields
    assert "duration" not in p.fields["event"]
    with pytest.raises(ParseError, match="combined"):
        parse_access("hello world")
    with pytest.raises(ParseError, match="month"):
        parse_access(ACCESS.replace("Nov", "Foo"))


def test_json_app_line_maps_contract_keys() -> None:
    line = orjson.dumps(
        {
            "ts": "2026-11-23T09:15:02.120+07:00",
            "system": "otp-gateway",
            "host": "otp-1",
            "level": "error",
            "event": "otp_verify",
            "result": "failure",
            "error_code": "E42",
            "user": "c1",
            "ip": "1.2.3.4",
            "latency_ms": 812,
            "carrier": "viettel",
            "purpose": "login",
            "province": "01",
            "ward": "00070",
            "unknown_key": {"x": 1},
        }
    ).decode()
    p = parse_app(line)
    assert p.service == "otp-gateway"
    assert p.province == "01"
    assert p.ward == "00070"
    assert p.timestamp == datetime(2026, 11, 23, 2, 15, 2, 120000, tzinfo=UTC)
    f = p.fields
    assert f["event"] == {
        "kind": "event",
        "action": "otp-verify",
        "outcome": "failure",
        "category": ["authentication"],
        "duration": 812_000_000,
    }
    assert f["soc"] == {"otp": {"carrier": "viettel", "purpose": "login"}}
    assert f["error"] == {"code": "E42"}
    assert f["source"] == {"ip": "1.2.3.4"}
    assert "unknown_key" not in f


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"ts": "2026-11-23T09:15:02+07:00", "system": "vneid"', "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"ts": "yesterday"}', "ts: 'yesterday' is not an ISO 8601"),
        ('{"ts": "2026-11-23T09:15:02"}', "no UTC offset"),
        ('{"ts": "2026-11-23T09:15:02Z", "latency_ms": "fast"}', "latency_ms: expected a number"),
        ('{"ts": "2026-11-23T09:15:02Z", "user": {"a": 1}}', "user: expected a string"),
        ('{"ts": "2026-11-23T09:15:02Z", "records": 1.5}', "records: expected an integer"),
    ],
)
def test_json_app_errors_name_the_key(line: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_app(line)


def test_json_without_ts_is_kept_and_flagged() -> None:
    p = parse_app('{"system": "payment", "event": "payment", "result": "success"}')
    assert p.timestamp is None
    assert p.flags == ("timestamp_missing",)


def test_syslog_5424_with_json_body_and_structured_data() -> None:
    body = '{"ts":"2026-11-23T09:15:02.120+07:00","system":"vneid","event":"login","step":"token"}'
    p = parse_syslog(
        f'<131>1 2026-11-23T09:15:02.000+07:00 vn-1 vneid 77 ID1 [a x="]\\]"][b] {body}'
    )
    assert p.service == "vneid"
    assert p.host == "vn-1"
    syslog = p.fields["log"]["syslog"]
    assert syslog["facility"] == {"code": 16, "name": "local0"}
    assert syslog["severity"] == {"code": 3, "name": "error"}
    assert (syslog["appname"], syslog["procid"], syslog["msgid"]) == ("vneid", "77", "ID1")
    assert p.fields["soc"] == {"vneid": {"step": "token"}}
    assert p.timestamp == datetime(2026, 11, 23, 2, 15, 2, 120000, tzinfo=UTC)


def test_syslog_3164_and_missing_timestamp() -> None:
    p = parse_syslog("<38>Nov  3 09:15:02 gw-7 sshd[991]: Failed password for root")
    assert p.host == "gw-7"
    assert p.fields["message"] == "Failed password for root"
    assert p.fields["log"]["syslog"]["procid"] == "991"
    assert p.flags == ("timestamp_assumed_zone",)
    assert p.timestamp is not None
    assert (p.timestamp.month, p.timestamp.day) == (11, 3)
    bare = parse_syslog("<13>just a message")
    assert bare.timestamp is None
    assert bare.flags == ("timestamp_missing",)
    nil = parse_syslog("<13>1 - host app - - - msg")
    assert nil.timestamp is None
    assert nil.fields["message"] == "msg"
    with pytest.raises(ParseError, match="PRI"):
        parse_syslog("no pri here")
    with pytest.raises(ParseError, match="out of range"):
        parse_syslog("<999>1 - - - - - - x")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400), st.sampled_from(sorted(PARSERS)))
def test_any_text_parses_or_raises_parse_error(text: str, name: str) -> None:
    try:
        parsed = PARSERS[name](text)
    except ParseError:
        return
    orjson.dumps(dict(parsed.fields))  # whatever parsed is serialisable


@settings(max_examples=200, deadline=None)
@given(
    ip=st.ip_addresses().map(str),
    user=st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True),
    path=st.from_regex(r"/[a-zA-Z0-9/_.-]{0,40}", fullmatch=True),
    status=st.integers(100, 599),
    size=st.integers(0, 10**9),
    agent=st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=80),
)
def test_access_round_trip(
    ip: str, user: str, path: str, status: int, size: int, agent: str
) -> None:
    quoted = agent.replace("\\", "\\x5C").replace('"', "\\x22")
    line = (
        f'{ip} - {user} [05/Mar/2026:01:02:03 +0700] "POST {path} HTTP/2.0" {status} {size} '
        f'"-" "{quoted}" 1.5'
    )
    p = parse_access(line)
    assert p.fields["source"]["ip"] == ip
    assert p.fields["url"]["path"] == path
    assert p.fields["http"]["response"] == {"status_code": status, "bytes": size}
    assert p.fields.get("user_agent", {}).get("original", "") == (agent if agent != "-" else "")
    assert p.fields["event"]["outcome"] == ("failure" if status >= 400 else "success")


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["ts", "system", "event", "result", "latency_ms", "user", "records", "ip", "province"]
        ),
        st.one_of(
            st.none(),
            st.integers(),
            st.floats(),
            st.text(max_size=20),
            st.lists(st.integers(), max_size=2),
        ),
        max_size=9,
    )
)
def test_json_objects_never_crash(body: dict[str, object]) -> None:
    with contextlib.suppress(ParseError):
        parse_app(json.dumps(body))


@given(
    st.one_of(
        st.ip_addresses().map(str),
        st.ip_addresses(v=4).map(lambda a: str(a).replace(".", ".0", 1)),  # leading zero
        st.text(alphabet="0123456789.:abcdefABCDEF%x \x00\u0661", max_size=45),
        st.text(max_size=45),
    )
)
def test_is_ip_agrees_with_ipaddress(value: str) -> None:
    """The C fast path of ``is_ip`` accepts exactly what :mod:`ipaddress` accepts."""
    try:
        ipaddress.ip_address(value)
        expected = True
    except ValueError:
        expected = False
    assert is_ip(value) is expected


def test_repeated_access_stamps_parse_alike() -> None:
    """Stamps are cached by their text: a repeat gives the same instant, a bad one still fails."""
    first = parse_time("23/Nov/2026:10:00:00 +0700")
    again = parse_time("23/Nov/2026:10:00:00 +0700")
    assert again == first == datetime(2026, 11, 23, 3, tzinfo=UTC)
    for _ in range(2):
        with pytest.raises(ParseError, match="unknown month"):
            parse_time("23/Foo/2026:10:00:00 +0700")


@pytest.mark.parametrize("latency", [1e303, -1e303, 10**400, 2**63])
def test_json_latency_out_of_range_is_a_parse_error(latency: float) -> None:
    with pytest.raises(ParseError, match="latency_ms"):
        from_object({"system": "vneid", "latency_ms": latency})


SCANNER = (
    '45.9.20.7 - - [02/Nov/2026:03:11:09 +0700] "GET /cgi-bin/.%2e/.%2e/bin/sh HTTP/1.1" 400 157 '
    '"-" "Mozilla/5.0 zgrab/0.x"'
)


@pytest.mark.parametrize(
    "line",
    [
        f'"{SCANNER}"',  # wrapped, inner quotes as they were
        '"' + SCANNER.replace('"', '""') + '"',  # wrapped CSV-style: inner quotes doubled
        '"' + SCANNER.replace('"', '\\"') + '"',  # wrapped, inner quotes backslash-escaped
    ],
)
def test_access_line_wrapped_in_quotes_is_unwrapped_and_flagged(line: str) -> None:
    p = parse_access(line)
    assert p.flags == ("line_unwrapped",)
    assert p.fields["url"]["path"] == "/cgi-bin/.%2e/.%2e/bin/sh"
    assert p.fields["user_agent"]["original"] == "Mozilla/5.0 zgrab/0.x"
    assert p.fields["http"]["response"]["status_code"] == 400
    assert p.fields["event"]["original"] == line  # the line as written stays with the event
    assert p.timestamp == parse_access(SCANNER).timestamp


def test_access_unbalanced_quotes_are_repaired_not_dead_lettered() -> None:
    agent_cut = SCANNER[:-1]  # the user agent lacks its closing quote
    p = parse_access(agent_cut)
    assert p.flags == ("quotes_repaired",)
    assert p.fields["user_agent"]["original"] == "Mozilla/5.0 zgrab/0.x"
    assert p.fields["event"]["original"] == agent_cut
    quoted = SCANNER.replace("/bin/sh", '/?id=1" or "1"="1')  # quotes inside the request
    q = parse_access(quoted)
    assert "quotes_repaired" in q.flags
    assert '"1"="1' in q.fields["url"]["original"]
    common = SCANNER[: SCANNER.index(' "-"')]  # common log format: no referrer nor agent
    assert parse_access(common).fields["http"]["response"]["bytes"] == 157
    assert "original" not in parse_access(SCANNER).fields["event"]  # a clean line is not copied
    with pytest.raises(ParseError, match="combined"):
        parse_access('"just some quoted text"')
