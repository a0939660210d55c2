"""The application-log parser reads the sync job's run records (docs/log-formats.md, portal-sync):
the province's summary with its counts, and a commune's failure with its reason, under one run id.

Kept apart from tests/collectors/test_parsers.py, which covers the parser as a whole."""

from __future__ import annotations

import pytest

from collectors.parsers import parse_app
from soc.errors import ParseError

SUMMARY = (
    '{"ts":"2026-11-23T09:00:11.196+07:00","system":"portal-sync",'
    '"host":"portal-sync-cao-bang-01","level":"warn","event":"sync_run","result":"success",'
    '"latency_ms":10269,"province":"04","target":"dvc-quoc-gia",'
    '"run_id":"sync-04-20261123T0200Z","units_synced":55,"units_failed":1}'
)
FAILURE = (
    '{"ts":"2026-11-23T09:00:03.553+07:00","system":"portal-sync",'
    '"host":"portal-sync-cao-bang-01","level":"error","event":"sync_run","result":"failure",'
    '"error_code":"SYNC_DB_UNREACHABLE",'
    '"msg":"connection refused by the commune\'s one-stop-shop database",'
    '"latency_ms":3000,"province":"04","ward":"01654","target":"dvc-quoc-gia",'
    '"run_id":"sync-04-20261123T0200Z"}'
)


def test_a_run_summary_maps_its_run_id_and_counts() -> None:
    parsed = parse_app(SUMMARY)
    assert parsed.fields["event"]["action"] == "sync-run"
    assert parsed.fields["event"]["outcome"] == "success"
    assert parsed.fields["event"]["category"] == ["network"]
    assert parsed.fields["soc"]["sync"] == {
        "target": "dvc-quoc-gia",
        "run_id": "sync-04-20261123T0200Z",
        "units_synced": 55,
        "units_failed": 1,
    }
    assert (parsed.service, parsed.province, parsed.ward) == ("portal-sync", "04", None)


def test_a_communes_failed_run_keeps_its_locality_reason_and_run_id() -> None:
    parsed = parse_app(FAILURE)
    assert parsed.fields["event"]["outcome"] == "failure"
    assert parsed.fields["error"] == {"code": "SYNC_DB_UNREACHABLE"}
    assert parsed.fields["message"].startswith("connection refused")
    assert parsed.fields["soc"]["sync"]["run_id"] == "sync-04-20261123T0200Z"
    assert (parsed.province, parsed.ward) == ("04", "01654")


@pytest.mark.parametrize(
    ("key", "value"),
    [("units_synced", '"55"'), ("units_failed", "1.5"), ("units_failed", "true")],
)
def test_counts_must_be_integers_and_the_error_names_the_key(key: str, value: str) -> None:
    line = SUMMARY.replace(f'"{key}":', f'"{key}":{value},"_was":')
    with pytest.raises(ParseError, match=key):
        parse_app(line)
