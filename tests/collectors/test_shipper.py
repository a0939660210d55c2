"""Spool and shipper against the real Elasticsearch: exact counts, no doubles on replay, mapping
rejections dead-lettered, a full spool pushes back, an unreachable cluster loses nothing."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from elasticsearch import Elasticsearch

from collectors.metrics import Metrics
from collectors.models import Action, RawLine, SourceType
from collectors.normalise import Normaliser
from collectors.parsers import parse_auto
from collectors.shipper import Shipper
from collectors.spool import Spool, SpoolFull
from soc.es.indices import Indices
from soc.es.templates import setup
from soc.inventory import loads_inventory
from tests.collectors.conftest import count
from tests.conftest import free_port

INV = 'systems: [{id: s, service: payment, province: "01", paths: ["/f/*"]}]'
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)


def _lines(n: int, bad_every: int = 0) -> list[RawLine]:
    out = []
    for i in range(n):
        body = {
            "ts": (T0 + timedelta(milliseconds=i)).isoformat(),
            "system": "payment",
            "event": "payment",
            "result": "success",
            "request_id": f"r{i}",
        }
        data = orjson.dumps(body)
        if bad_every and i % bad_every == 0:
            data = data[:20]  # truncated JSON
        out.append(RawLine("src", SourceType.FILE, data, T0, path="/f/a.log", offset=i * 100))
    return out


def _pipeline(tmp_path: Path, indices: Indices) -> tuple[Normaliser, Spool, Metrics]:
    norm = Normaliser(loads_inventory(INV), indices, "c1")
    return norm, Spool(tmp_path / "spool"), Metrics("c1")


def _spool_all(norm: Normaliser, spool: Spool, metrics: Metrics, lines: list[RawLine]) -> None:
    actions = [norm.normalise(line, parse_auto) for line in lines]
    metrics.inc("src", "read", len(lines))
    spool.append(actions)


def test_exact_counts_accounting_identity_and_replay(
    es: Elasticsearch, ready: Indices, tmp_path: Path
) -> None:
    norm, spool, metrics = _pipeline(tmp_path, ready)
    _spool_all(norm, spool, metrics, _lines(1000, bad_every=10))
    shipper = Shipper(es, spool, metrics, deadletter_index=ready.deadletter, batch_size=300)
    assert shipper.drain(30)
    assert count(es, ready.events) == 900
    assert count(es, ready.deadletter) == 100
    m = {k: metrics.get("src", k) for k in ("read", "indexed", "deadlettered", "duplicates")}
    assert m == {"read": 1000, "indexed": 900, "deadlettered": 100, "duplicates": 0}
    # a crash before the cursor moved: the whole spool is sent again; nothing doubles
    spool.close()
    (tmp_path / "spool" / "cursor.json").unlink()
    again = Spool(tmp_path / "spool")
    replay = Metrics("c1")
    assert Shipper(es, again, replay, deadletter_index=ready.deadletter).drain(30)
    assert count(es, ready.events) == 900
    assert count(es, ready.deadletter) == 100
    # dead letters too: what the dead-letter index holds is counted once, in deadlettered
    assert (replay.get("src", "duplicates"), replay.get("src", "deadlettered")) == (1000, 0)


def test_identical_dead_letters_are_stored_once_and_counted_once(
    es: Elasticsearch, ready: Indices, tmp_path: Path
) -> None:
    """A sender repeating one bad message: one dead letter stored, the repeats are duplicates
    (before: counted as dead-lettered each time, 5,156 counted for 5,080 stored)."""
    norm, spool, metrics = _pipeline(tmp_path, ready)
    bad = RawLine("src", SourceType.SYSLOG, b"no pri at all", T0, peer="10.0.0.9")
    _spool_all(norm, spool, metrics, [bad] * 5 + [bad._replace(data=b"other garbage")])
    assert Shipper(es, spool, metrics, deadletter_index=ready.deadletter).drain(30)
    assert count(es, ready.deadletter) == 2
    counted = {k: metrics.get("src", k) for k in ("read", "deadlettered", "duplicates")}
    assert counted == {"read": 6, "deadlettered": 2, "duplicates": 4}


def test_mapping_rejection_becomes_a_dead_letter(
    es: Elasticsearch, ready: Indices, tmp_path: Path
) -> None:
    _norm, spool, metrics = _pipeline(tmp_path, ready)
    good = {
        "@timestamp": T0.isoformat(),
        "event": {"ingested": T0.isoformat()},
        "soc": {"source": {"id": "src"}},
        "http": {"response": {"status_code": 200}},
    }
    bad = {**good, "http": {"response": {"status_code": "not-a-number"}}}
    index = ready.events_for(T0)
    spool.append(
        [Action(index, "good", "src", "event", good), Action(index, "bad", "src", "event", bad)]
    )
    assert Shipper(es, spool, metrics, deadletter_index=ready.deadletter).drain(30)
    assert count(es, ready.events) == 1
    es.indices.refresh(index=ready.deadletter)
    hits = es.search(index=ready.deadletter)["hits"]["hits"]
    assert len(hits) == 1
    letter = hits[0]["_source"]
    assert letter["deadletter"]["stage"] == "index"
    assert "status_code" in letter["deadletter"]["reason"]
    assert "not-a-number" in letter["deadletter"]["raw"]
    assert letter["soc"]["source"]["id"] == "src"
    assert metrics.get("src", "indexed") == 1
    assert metrics.get("src", "deadlettered") == 1


def test_full_spool_refuses_without_blocking_and_frees_space_when_shipped(
    es: Elasticsearch, ready: Indices, tmp_path: Path
) -> None:
    norm = Normaliser(loads_inventory(INV), ready, "c1")
    spool = Spool(tmp_path / "spool", max_bytes=20_000, segment_bytes=4_000)
    actions = [norm.normalise(line, parse_auto) for line in _lines(200)]
    written = 0
    refused = False
    for action in actions:
        try:
            spool.append([action], block=False)
        except SpoolFull:
            refused = True
            break
        written += 1
    assert refused
    assert 0 < written < 200
    assert spool.pending_bytes() <= 20_000
    with pytest.raises(SpoolFull, match="stayed full"):
        spool.append(actions[written : written + 1], timeout=0.2)
    assert Shipper(es, spool, Metrics("c1"), deadletter_index=ready.deadletter).drain(30)
    assert spool.pending_bytes() == 0
    assert len(list((tmp_path / "spool").glob("seg-*"))) == 1  # shipped segments deleted
    assert count(es, ready.events) == written


def test_unreachable_cluster_keeps_everything_in_order_until_it_is_back(
    es: Elasticsearch, ready: Indices, tmp_path: Path
) -> None:
    from soc.config import load_settings
    from soc.es.client import make_client

    norm, spool, metrics = _pipeline(tmp_path, ready)
    _spool_all(norm, spool, metrics, _lines(300))
    nowhere = make_client(
        load_settings(es_url=f"http://127.0.0.1:{free_port()}", es_request_timeout=1)
    )
    down = Shipper(nowhere, spool, metrics, deadletter_index=ready.deadletter, retry_initial=0.05)
    assert not down.drain(timeout=1.0)
    assert metrics.get("src", "retries") >= 2
    assert spool.pending_bytes() > 0
    assert count(es, ready.events) == 0
    up = Shipper(es, spool, metrics, deadletter_index=ready.deadletter)
    assert up.drain(30)
    assert count(es, ready.events) == 300
    assert metrics.get("src", "indexed") == 300


@pytest.mark.parametrize(
    "torn",
    [b'#{"n":2,"len":90', b'#{"n":1,"len":500,"s":"src","t":1,"ends":[500]}\n{"create"'],
    ids=["header", "body"],
)
def test_torn_last_chunk_of_a_crashed_segment_is_skipped(
    tmp_path: Path, ready: Indices, torn: bytes
) -> None:
    norm = Normaliser(loads_inventory(INV), ready, "c1")
    spool = Spool(tmp_path / "spool")
    spool.append([norm.normalise(line, parse_auto) for line in _lines(3)])
    spool.close()
    segment = next((tmp_path / "spool").glob("seg-*"))
    with segment.open("ab") as fh:
        fh.write(torn)  # the process died mid-write
    reopened = Spool(tmp_path / "spool")
    batch = reopened.read(100)
    assert batch.count == 3
    assert [r.id for r in batch.records()] == [
        norm.normalise(line, parse_auto).id for line in _lines(3)
    ]
    reopened.close()
    shutil.rmtree(tmp_path / "spool")


def test_a_spool_of_the_first_format_is_still_shipped(
    es: Elasticsearch, ready: Indices, tmp_path: Path
) -> None:
    """A collector upgraded with records still waiting in the spool's first format (a
    ``meta<TAB>document`` line each) ships them, then the chunks it writes itself."""
    norm = Normaliser(loads_inventory(INV), ready, "c1")
    actions = [norm.normalise(line, parse_auto) for line in _lines(10, bad_every=5)]
    (tmp_path / "spool").mkdir()
    old = b"".join(
        orjson.dumps({"i": a.index, "d": a.id, "s": a.source_id, "k": a.kind, "t": 1.0})
        + b"\t"
        + orjson.dumps(a.document)
        + b"\n"
        for a in actions[:6]
    )
    (tmp_path / "spool" / "seg-000000000000.spool").write_bytes(old)
    spool = Spool(tmp_path / "spool")
    assert spool.pending_by_source() == {"src": 6}
    spool.append(actions[6:])
    metrics = Metrics("c1")
    assert Shipper(es, spool, metrics, deadletter_index=ready.deadletter, batch_size=4).drain(30)
    assert count(es, ready.events) == 8
    assert count(es, ready.deadletter) == 2
    assert metrics.get("src", "indexed") == 8
    assert metrics.get("src", "deadlettered") == 2


def test_a_batch_limit_inside_a_chunk_resumes_there_after_a_restart(
    tmp_path: Path, ready: Indices
) -> None:
    """Batches are cut at the record the limit falls on, inside a chunk; the cursor keeps that
    place, so a new process goes on from the next record: none twice, none skipped."""
    norm = Normaliser(loads_inventory(INV), ready, "c1")
    actions = [norm.normalise(line, parse_auto) for line in _lines(25)]
    spool = Spool(tmp_path / "spool")
    spool.append(actions[:10])
    spool.append(actions[10:])
    first = spool.read(7)
    second = spool.read_from(first.end, 7)
    assert (first.count, second.count) == (7, 7)
    spool.commit(second.end)
    spool.close()
    again = Spool(tmp_path / "spool")
    rest = again.read(100)
    seen = [r.id for b in (first, second, rest) for r in b.records()]
    assert seen == [a.id for a in actions]
    assert len(second.parts) == 2  # records 7-9 of the first chunk, 0-3 of the second
    by_bytes = again.read(100, max_bytes=1)
    assert by_bytes.count == 1  # at least one record, whatever the byte limit
    again.close()


def test_prepare_runs_before_first_bulk(
    es: Elasticsearch, indices: Indices, tmp_path: Path
) -> None:
    norm, spool, metrics = _pipeline(tmp_path, indices)
    _spool_all(norm, spool, metrics, _lines(5))

    def prepare() -> None:
        setup(es, indices)

    shipper = Shipper(es, spool, metrics, deadletter_index=indices.deadletter, prepare=prepare)
    assert shipper.drain(30)
    mapping = es.indices.get_mapping(index=indices.events_for(T0))
    assert next(iter(mapping.body.values()))["mappings"]["dynamic"] == "false"


def test_running_shipper_reads_ahead_but_indexes_in_spool_order(
    es: Elasticsearch, ready: Indices, tmp_path: Path
) -> None:
    """``run`` builds the next bulk while one is in flight; still one bulk at a time: on the
    single shard, sequence numbers follow the spool order, and the cursor ends at the end."""
    norm, spool, metrics = _pipeline(tmp_path, ready)
    lines = _lines(2500)
    _spool_all(norm, spool, metrics, lines[:2000])
    shipper = Shipper(
        es, spool, metrics, deadletter_index=ready.deadletter, batch_size=250, flush_interval=0.05
    )
    runner = threading.Thread(target=shipper.run)
    runner.start()
    try:
        _wait(lambda: metrics.get("src", "indexed") == 2000)
        _spool_all(norm, spool, metrics, lines[2000:])  # arrives while it runs
        _wait(lambda: metrics.get("src", "indexed") == 2500)
    finally:
        shipper.stop()
        runner.join(10)
    assert not runner.is_alive()
    assert spool.pending_bytes() == 0
    assert count(es, ready.events) == 2500
    es.indices.refresh(index=ready.events)
    hits = es.search(
        index=ready.events,
        size=2500,
        sort=[{"log.offset": "asc"}],
        seq_no_primary_term=True,
        source=False,
    )["hits"]["hits"]
    assert len({h["_index"] for h in hits}) == 1  # one day, one shard: one sequence
    seq = [h["_seq_no"] for h in hits]
    assert seq == sorted(seq)
    assert len(set(seq)) == 2500


def _wait(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
