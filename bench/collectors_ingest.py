"""Benchmark of the collectors: whole-pipeline ingest (files → parse → normalise → spool → bulk)
next to raw ``_bulk`` of the same final documents into the same Elasticsearch in the same run, and
the collector's CPU per 1,000 events/s.

One command, one report (``bench/reports/collectors-ingest.md``)::

    SOC_ES_URL=http://127.0.0.1:9250 .venv/bin/python bench/collectors_ingest.py
    .venv/bin/python bench/collectors_ingest.py --events 20000     # quicker

Lines are half nginx access lines, half JSON application lines, over the 34 provinces, in 34
files. Raw ``_bulk`` sends the very documents the pipeline produced (normalised beforehand, not
timed) with the same batch size from one thread, like the shipper. Each phase writes into a fresh
index prefix (``collbench-<time>-<round>-raw`` / ``-pipe``), deleted as soon as it is counted;
which phase goes first alternates between rounds.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import yaml
from elasticsearch import Elasticsearch

from collectors.config import load_config
from collectors.flows import Collector
from collectors.models import RawLine, SourceType
from collectors.parsers import parse_auto
from soc.config import load_settings
from soc.es.client import make_client, wait_until_healthy
from soc.es.indices import Indices
from soc.es.templates import setup, teardown
from soc.localities import catalogue

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "bench" / "reports" / "collectors-ingest.md"
SYSTEMS = ("vneid", "otp-gateway", "national-db", "portal-sync")


def write_logs(directory: Path, events: int) -> int:
    """``events`` lines over 34 provinces: access logs and JSON app logs; returns bytes written."""
    provinces = [p.code for p in catalogue().provinces]
    start = datetime.now(UTC) - timedelta(hours=2)
    per_file: dict[Path, list[bytes]] = {}
    for i in range(events):
        code = provinces[i % len(provinces)]
        at = start + timedelta(milliseconds=i * 7)
        if i % 2:
            stamp = at.strftime("%d/%b/%Y:%H:%M:%S +0000")
            line = (
                f'113.161.{i % 250}.{i % 199} - citizen{i % 9000:05d} [{stamp}] "GET '
                f'/dich-vu-cong/ho-so/{i}?lang=vi HTTP/1.1" {200 if i % 17 else 503} {i % 9000} '
                f'"https://dichvucong.gov.vn/" "Mozilla/5.0 (Linux; Android 14)" 0.{i % 900:03d}'
            )
            path = directory / code / "web-portal.access.log"
        else:
            system = SYSTEMS[(i // 2) % len(SYSTEMS)]
            line = orjson.dumps(
                {
                    "ts": at.isoformat(timespec="milliseconds"),
                    "system": system,
                    "host": f"{system}-{code}-01",
                    "level": "info",
                    "event": _event(system),
                    "result": "failure" if i % 13 == 0 else "success",
                    "latency_ms": i % 700,
                    "request_id": f"req-{i}",
                    "province": code,
                }
            ).decode()
            path = directory / code / f"{system}.app.log"
        per_file.setdefault(path, []).append(line.encode() + b"\n")
    total = 0
    for path, lines in per_file.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        data = b"".join(lines)
        path.write_bytes(data)
        total += len(data)
    return total


def _event(system: str) -> str:
    return {
        "vneid": "login",
        "otp-gateway": "otp_send",
        "national-db": "db_lookup",
        "portal-sync": "dossier_sync",
    }[system]


def config_file(work: Path, logs: Path, batch: int, workers: int = 1) -> Path:
    body = {
        "collector": {
            "id": "bench",
            "state_dir": str(work / "state"),
            "batch_size": batch,
            "flush_interval": 0.2,
            "spool_max_mb": 2048,
            "parse_workers": workers,
        },
        "inventory": {
            "systems": [
                {
                    "id": "sim",
                    "paths": [
                        "**/{province}/{service}.access.log",
                        "**/{province}/{service}.app.log",
                    ],
                }
            ]
        },
        "sources": [
            {
                "id": "files",
                "type": "file",
                "paths": [str(logs / "**" / "*.log")],
                "format": "auto",
                "poll_interval": 0.05,
            }
        ],
    }
    path = work / "collector.yaml"
    path.write_text(yaml.safe_dump(body), "utf-8")
    return path


def final_documents(cfg: Path, logs: Path, indices: Indices) -> list[tuple[str, str, bytes]]:
    """The pipeline's own normalisation of every line (index, id, document), untimed."""
    config = load_config(cfg)
    from collectors.normalise import Normaliser

    norm = Normaliser(config.inventory, indices, "bench")
    now = datetime.now(UTC)
    docs = []
    for path in sorted(logs.rglob("*.log")):
        offset = 0
        for raw in path.read_bytes().splitlines(keepends=True):
            line = RawLine(
                "files", SourceType.FILE, raw.rstrip(b"\n"), now, path=str(path), offset=offset
            )
            offset += len(raw)
            action = norm.normalise(line, parse_auto)
            docs.append((action.index, action.id, orjson.dumps(action.document)))
    return docs


def es_cpu(es: Elasticsearch) -> float:
    """CPU seconds used so far by the Elasticsearch node(s) (``_nodes/stats/process``)."""
    stats = es.nodes.stats(metric="process")["nodes"]
    return float(sum(n["process"]["cpu"]["total_in_millis"] for n in stats.values())) / 1000


def raw_bulk(es: Elasticsearch, docs: list[tuple[str, str, bytes]], batch: int) -> float:
    started = time.perf_counter()
    for at in range(0, len(docs), batch):
        body = bytearray()
        for index, ident, doc in docs[at : at + batch]:
            body += b'{"create":{"_index":"%s","_id":"%s"}}\n' % (index.encode(), ident.encode())
            body += doc + b"\n"
        # Pre-encoded NDJSON, sent as is (as the shipper does): the stubs say mappings only.
        resp = es.bulk(body=bytes(body), filter_path="errors")  # type: ignore[arg-type]
        if resp.get("errors"):
            raise SystemExit("raw _bulk reported errors")
    return time.perf_counter() - started


def pipeline(es: Elasticsearch, cfg: Path, indices: Indices, events: int) -> tuple[float, float]:
    """Wall time and collector CPU (its process and its parse workers) to index ``events``.

    The parse workers are started before the clock (once per collector run: an interpreter
    start and the catalogue, not throughput); everything after is timed."""
    collector = Collector(load_config(cfg), es, indices)
    collector.start_workers()
    workers = collector.normalisers.pids()
    cpu0 = _cpu(workers)
    started = time.perf_counter()
    collector.start()
    while collector.metrics.get("files", "indexed") < events:
        time.sleep(0.02)
    wall = time.perf_counter() - started
    cpu = _cpu(workers) - cpu0
    collector.stop(drain_timeout=30)
    return wall, cpu


def raw_phase(
    es: Elasticsearch, docs: list[tuple[str, str, bytes]], batch: int, indices: Indices
) -> tuple[int, float, float]:
    """Raw ``_bulk`` into fresh indices: (count, seconds, Elasticsearch CPU seconds)."""
    setup(es, indices)
    try:
        es0 = es_cpu(es)
        seconds = raw_bulk(es, docs, batch)
        return _count(es, indices), seconds, es_cpu(es) - es0
    finally:
        # Deleted at once: its segment merges must not run on into the next phase.
        teardown(es, indices.prefix)


def pipeline_phase(
    es: Elasticsearch, cfg: Path, indices: Indices, events: int
) -> tuple[int, float, float, float]:
    """The collector into fresh indices: (count, seconds, collector CPU, Elasticsearch CPU)."""
    setup(es, indices)
    try:
        es0 = es_cpu(es)
        seconds, cpu = pipeline(es, cfg, indices, events)
        return _count(es, indices), seconds, cpu, es_cpu(es) - es0
    finally:
        teardown(es, indices.prefix)


def _cpu(workers: list[int]) -> float:
    """CPU seconds of this process (all threads) and of the running ``workers``."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    total = usage.ru_utime + usage.ru_stime
    tick = os.sysconf("SC_CLK_TCK")
    for pid in workers:
        # /proc/<pid>/stat: utime and stime are fields 14 and 15 (after the "(name)" field).
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _count(es: Elasticsearch, indices: Indices) -> int:
    es.indices.refresh(index=indices.events)
    return int(es.count(index=indices.events)["count"])


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = int(Path("/proc/meminfo").read_text().split()[1]) // (1024 * 1024)
    except OSError:
        mem = 0
    return f"{os.cpu_count()} cores ({cpu}), {mem} GiB RAM, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument(
        "--parse-workers",
        type=int,
        default=1,
        help="the collector's parse_workers (0: parse in the collector's own process)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="raw and pipeline phases alternate this many times; medians reported",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="rounds run first and shown but left out of the medians (a fresh node's JIT and "
        "caches, the first collector's imports)",
    )
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    settings = load_settings()
    es = make_client(settings)
    wait_until_healthy(es, timeout=settings.es_wait_timeout)
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    rounds: list[tuple[int, float, int, float, float, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="collbench-") as tmp:
        logs = Path(tmp) / "logs"
        size = write_logs(logs, args.events)
        for n in range(args.warmup + args.rounds):
            work = Path(tmp) / f"round{n}"
            work.mkdir()
            cfg = config_file(work, logs, args.batch, args.parse_workers)
            raw_idx = Indices(f"collbench-{stamp}-{n}-raw")
            pipe_idx = Indices(f"collbench-{stamp}-{n}-pipe")
            docs = final_documents(cfg, logs, raw_idx)
            # Which phase goes first alternates, so a drift of the machine's load (or anything
            # one phase leaves behind) does not always fall on the same side.
            if n % 2 == 0:
                raw_n, raw_s, es_raw = raw_phase(es, docs, args.batch, raw_idx)
                pipe_n, pipe_s, cpu_s, es_pipe = pipeline_phase(es, cfg, pipe_idx, args.events)
            else:
                pipe_n, pipe_s, cpu_s, es_pipe = pipeline_phase(es, cfg, pipe_idx, args.events)
                raw_n, raw_s, es_raw = raw_phase(es, docs, args.batch, raw_idx)
            rounds.append((raw_n, raw_s, pipe_n, pipe_s, cpu_s, es_raw, es_pipe))
            print(f"round {n + 1}: raw {raw_n / raw_s:,.0f}/s, pipeline {pipe_n / pipe_s:,.0f}/s")
    report(args, settings.effective_es_url, size, rounds, load_start)


def report(
    args: Any,
    url: str,
    size: int,
    rounds: list[tuple[int, float, int, float, float, float, float]],
    load_start: float,
) -> None:
    warm, rounds = rounds[: args.warmup], rounds[args.warmup :]
    raw_rate = statistics.median(r[0] / r[1] for r in rounds)
    pipe_rate = statistics.median(r[2] / r[3] for r in rounds)
    ratio = statistics.median((r[2] / r[3]) / (r[0] / r[1]) for r in rounds)
    cores = statistics.median(r[4] / r[3] for r in rounds)
    per_round = [
        f"| {'warm-up' if n < args.warmup else n + 1 - args.warmup} | {r[0] / r[1]:,.0f} "
        f"| {r[2] / r[3]:,.0f} | {(r[2] / r[3]) / (r[0] / r[1]):.0%} | {r[4] / r[3]:.2f} "
        f"| {r[5] / r[1]:.2f} | {r[6] / r[3]:.2f} |"
        for n, r in enumerate([*warm, *rounds])
    ]
    us_event = statistics.median(r[4] / r[2] * 1e6 for r in rounds)
    es_raw_us = statistics.median(r[5] / r[0] * 1e6 for r in rounds)
    es_pipe_us = statistics.median(r[6] / r[2] * 1e6 for r in rounds)
    lines = [
        "# Collectors: ingest throughput",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}; load average "
        f"{load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end. "
        f"Elasticsearch at {url}: a single node on the same "
        "machine, sharing its cores with the collector (and, here, with other work).",
        f"Command: `.venv/bin/python bench/collectors_ingest.py --events {args.events} "
        f"--batch {args.batch} --rounds {args.rounds} --warmup {args.warmup} "
        f"--parse-workers {args.parse_workers}`",
        "",
        f"{args.events} lines per phase ({size / 1e6:.1f} MB; half nginx access, half JSON app "
        f"lines, 34 files), bulk batches of {args.batch}. Raw `_bulk` and the pipeline alternate "
        f"{args.warmup + args.rounds} times (raw first in odd rounds, the pipeline first in even "
        "ones), each into fresh indices deleted right after their count (so one phase's segment "
        f"merges do not run into the next); the first {args.warmup} round(s) warm up (a fresh "
        "node's JIT and caches, the first collector's imports): shown, not in the medians. The "
        "collector's parse workers are started before its clock starts (once per run); their "
        "CPU is in the collector's.",
        "",
        "| round | raw `_bulk` events/s | pipeline events/s | pipeline / raw | collector cores "
        "| ES cores (raw) | ES cores (pipeline) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *per_round,
        "",
        f"- raw `_bulk` of the final documents: **{raw_rate:,.0f} events/s** (median)",
        f"- collector pipeline (tail → parse → normalise → spool → bulk): **{pipe_rate:,.0f} "
        "events/s** (median)",
        f"- **pipeline / raw `_bulk`: {ratio:.0%}** (median of the per-round ratios; goal ≥ 80%)",
        f"- collector CPU: {cores:.2f} cores at {pipe_rate:,.0f} events/s = "
        f"**{cores / (pipe_rate / 1000):.3f} cores per 1,000 events/s** (user + system time of "
        "the collector process, all threads, and of its parse workers), i.e. "
        f"{us_event:.0f} µs of collector CPU per event",
        f"- Elasticsearch CPU per event (`_nodes/stats`): {es_raw_us:.0f} µs under raw `_bulk`, "
        f"{es_pipe_us:.0f} µs under the pipeline (medians)",
        "",
        "Every phase's count is exact (`_count` after refresh) and equals the lines written.",
    ]
    REPORT.write_text("\n".join(lines) + "\n", "utf-8")
    print("\n".join(lines))
    if any(r[0] != args.events or r[2] != args.events for r in [*warm, *rounds]):
        raise SystemExit(f"count mismatch in {[*warm, *rounds]}")


if __name__ == "__main__":
    main()
