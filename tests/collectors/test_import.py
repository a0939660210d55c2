"""``soc collect import``: archived logs keep their own time, every line is accounted for, the
last line without newline is read, and importing twice doubles nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from elasticsearch import Elasticsearch

from collectors.config import load_config
from collectors.importer import run_import
from soc.es.indices import Indices
from tests.collectors.conftest import count, write_config

MONTH_AGO = datetime.now(UTC).replace(microsecond=0) - timedelta(days=31)


def _line(n: int) -> str:
    stamp = (MONTH_AGO + timedelta(minutes=n)).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'10.1.0.{n} - - [{stamp}] "GET /scan/{n} HTTP/1.1" 404 0 "-" "zgrab/0.x"'


def test_import_keeps_old_timestamps_and_accounts_for_every_line(
    es: Elasticsearch, ready: Indices, tmp_path: Path
) -> None:
    archived = tmp_path / "old" / "portal-access.log"
    archived.parent.mkdir()
    lines = [_line(n) for n in range(5)]
    lines[1] = f'"{lines[1]}"'  # wrapped in quotes, as some exporters write
    lines[2] = lines[2][:-1]  # the user agent lost its closing quote
    lines.append("not an access line at all")
    archived.write_text("\n".join([*lines, _line(9)]))  # the last line has no newline
    config = load_config(write_config(tmp_path, [{"id": "t", "type": "file",
                                                  "paths": ["/none/*.log"]}]))  # fmt: skip
    summary = run_import(config, es, ready, [archived], fmt="access", system="hn-portal")
    assert summary.counts == {"read": 7, "indexed": 6, "duplicates": 0, "deadlettered": 1,
                              "dropped": 0}  # fmt: skip
    assert summary.balanced
    assert not summary.state_dir.exists()  # its own spool, removed once shipped
    assert count(es, ready.events, {"term": {"soc.flags": "imported"}}) == 6
    hits = es.search(index=ready.events, query={"term": {"url.path": "/scan/9"}})["hits"]["hits"]
    (hit,) = hits
    doc = hit["_source"]
    own = MONTH_AGO + timedelta(minutes=9)
    assert doc["@timestamp"] == own.strftime("%Y-%m-%dT%H:%M:%S.000Z")  # its own time
    assert doc["event"]["ingested"] > doc["@timestamp"]  # received now
    assert hit["_index"] == ready.events_for(own)
    assert "timestamp_too_old" not in doc["soc"]["flags"]
    assert doc["locality"]["province"]["code"] == "01"
    again = run_import(config, es, ready, [archived], fmt="access", system="hn-portal")
    assert (again.counts["duplicates"], again.counts["indexed"]) == (7, 0)  # nothing doubled
    assert count(es, ready.events) == 6
    # The dead letter is written without a refresh (like the events): count() refreshes first.
    assert count(es, ready.deadletter) == 1
    letter = es.search(index=ready.deadletter)["hits"]["hits"][0]["_source"]["deadletter"]
    assert orjson.dumps(letter["raw"]) == orjson.dumps("not an access line at all")
