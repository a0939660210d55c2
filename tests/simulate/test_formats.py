"""The simulator writes exactly the formats of docs/log-formats.md, and its ECS events say the
same as its lines (so the backfill path and the collector path agree)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from soc.events.service import event_id
from soc.localities import catalogue
from soc.services import Service
from soc.simulate.formats import to_ecs, to_line
from soc.simulate.models import AccessRecord, AppRecord, Record
from soc.simulate.service import Plan, records
from tests.simulate.contract import parse_access, parse_app

HOUR = datetime(2026, 11, 23, 2, tzinfo=UTC)  # Monday 09:00 in Viet Nam
CATEGORY = {"vneid": "authentication", "otp-gateway": "authentication",
            "national-db": "database", "portal-sync": "network"}  # fmt: skip


@pytest.fixture(scope="module")
def sample() -> list[Record]:
    plan = Plan(seed=3, provinces=("01", "12"))
    return list(records(plan, HOUR, HOUR.replace(hour=3)))


def test_every_service_is_simulated(sample: list[Record]) -> None:
    assert {r.service for r in sample} == set(Service)


def test_access_lines_parse_and_match_their_event(sample: list[Record]) -> None:
    access = [r for r in sample if isinstance(r, AccessRecord)]
    assert len(access) > 100
    for rec in access:
        line, ecs = parse_access(to_line(rec)), to_ecs(rec)
        assert ecs["@timestamp"] == line["timestamp"].isoformat(timespec="milliseconds").replace(
            "+00:00", "Z"
        )
        assert ecs["source"]["ip"] == line["ip"]
        assert ecs.get("user", {}).get("name", "-") == line["user"]
        assert ecs["http"]["request"]["method"] == line["method"]
        assert ecs["url"]["path"] == line["path"]
        assert ecs["url"].get("query") == line["query"]
        assert ecs["http"]["response"]["status_code"] == line["status"]
        assert ecs["http"]["response"]["bytes"] == line["bytes"]
        assert ecs["user_agent"]["original"] == line["agent"]
        assert ecs["event"]["duration"] == line["duration_ns"]
        assert ecs["event"]["outcome"] == ("failure" if line["status"] >= 400 else "success")
        assert ecs["event"]["dataset"] == f"{rec.service.value}.access"
        assert ecs["event"]["category"] == ["web"]
        assert ecs["event"]["type"] == ["access"]


def test_app_lines_follow_the_contract(sample: list[Record]) -> None:
    apps = [r for r in sample if isinstance(r, AppRecord)]
    assert len(apps) > 100
    for rec in apps:
        body, ecs = parse_app(to_line(rec)), to_ecs(rec)
        stamp = datetime.fromisoformat(body["ts"]).astimezone(UTC)
        assert ecs["@timestamp"] == stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        assert ecs["service"]["name"] == body["system"]
        assert ecs["event"]["action"] == body["event"].replace("_", "-")
        assert ecs["event"]["outcome"] == body["result"]
        assert ecs["event"]["category"] == [CATEGORY.get(body["system"], "web")]
        assert ecs["host"]["name"] == body["host"]
        assert ecs["locality"]["province"]["code"] == body["province"]
        # A sync job's run summary is the province's (no ward); every other app line a commune's.
        assert ecs["locality"].get("ward", {}).get("code") == body.get("ward")
        assert "ward" in body or body["event"] == "sync_run"
        assert ecs.get("error", {}).get("code") == body.get("error_code")
        assert ecs["event"]["duration"] == body["latency_ms"] * 1_000_000
        if body["system"] == "otp-gateway":
            assert ecs["soc"]["otp"] == {"carrier": body["carrier"], "purpose": body["purpose"]}


def test_lines_never_carry_secrets(sample: list[Record]) -> None:
    phone = re.compile(r"\b(?:0|84)\d{9}\b")
    for rec in sample:
        line = to_line(rec)
        assert not phone.search(line), line
        if isinstance(rec, AppRecord):
            assert not set(parse_app(line)) & {"otp", "code", "phone", "password", "token"}


def test_localities_are_official() -> None:
    cat = catalogue()
    codes = {w.code for w in cat.wards}
    for rec in records(Plan(seed=1, provinces=("79",)), HOUR, HOUR.replace(minute=10)):
        assert rec.where.province.code == "79"
        if rec.where.ward is not None:
            assert rec.where.ward.code in codes


def test_event_ids_are_stable_across_runs() -> None:
    window = (HOUR, HOUR.replace(minute=5))
    first = [event_id(to_ecs(r)) for r in records(Plan(seed=9, provinces=("04",)), *window)]
    again = [event_id(to_ecs(r)) for r in records(Plan(seed=9, provinces=("04",)), *window)]
    assert first
    assert first == again
