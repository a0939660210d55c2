"""Where the incident list's p95 comes from: per-request server-side timings of ``GET
/api/v1/incidents`` at N concurrent clients, split into the stages a request goes through, next to
the raw search's client-side p95 measured in the same run (the reference of issue 23's goal).

The server is ``soc.app.create_app`` wrapped by :func:`probed_app` (this module, imported by
uvicorn's workers with ``--app-dir bench``), which records for each request, in the worker that
served it: arrival in the ASGI app, the hand-off to the thread pool, the handler's start and end in
its thread (wall and thread CPU), the time in the Elasticsearch client (and the part of it spent
waiting for one of the client's pooled connections), the return to the event loop and the last
byte sent; plus the worker's GC pauses and its event loop's lag (a 5 ms timer's overshoot). Each
``--variant`` (``name:KEY=VALUE,...``) starts the server with those ``SOC_*`` settings; variants
and the raw search alternate in rounds::

    SOC_ES_URL=http://127.0.0.1:9250 .venv/bin/python bench/api_tail.py --rounds 3 \
        --variant old:SOC_ES_CONNECTIONS_PER_NODE=10,SOC_API_GC_FREEZE=false \
        --variant new:

Writes ``bench/reports/api-tail.md``; the index prefix (``apibench-<time>``) is deleted after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio.to_thread

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "bench" / "reports" / "api-tail.md"
#: Where the probed workers write their records (one JSON line per request, per worker).
PROBE_DIR_ENV = "SOC_BENCH_PROBE_DIR"

_REQUEST: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "probe_request", default=None
)


def probed_app() -> Any:
    """``soc.app.create_app()`` with the probes installed (a uvicorn factory)."""
    import elastic_transport
    import urllib3

    from soc.app import create_app

    out_dir = Path(os.environ[PROBE_DIR_ENV])
    out = (out_dir / f"requests-{os.getpid()}.jsonl").open("a", buffering=1)
    ticks = (out_dir / f"worker-{os.getpid()}.jsonl").open("a", buffering=1)

    real_run_sync = anyio.to_thread.run_sync

    async def run_sync(func: Any, *args: Any, **kwargs: Any) -> Any:
        rec = _REQUEST.get()
        if rec is None:
            return await real_run_sync(func, *args, **kwargs)
        rec["submit"] = time.perf_counter()

        def timed(*a: Any) -> Any:
            rec["start"] = time.perf_counter()
            cpu = time.thread_time()
            try:
                return func(*a)
            finally:
                rec["cpu"] = rec.get("cpu", 0.0) + time.thread_time() - cpu
                rec["end"] = time.perf_counter()

        try:
            return await real_run_sync(timed, *args, **kwargs)
        finally:
            rec["resume"] = time.perf_counter()

    anyio.to_thread.run_sync = run_sync  # type: ignore[assignment]

    real_perform = elastic_transport.Transport.perform_request

    def perform(self: Any, *a: Any, **kw: Any) -> Any:
        started = time.perf_counter()
        try:
            return real_perform(self, *a, **kw)
        finally:
            rec = _REQUEST.get()
            if rec is not None:
                rec["es"] = rec.get("es", 0.0) + time.perf_counter() - started
                rec["es_calls"] = rec.get("es_calls", 0) + 1

    elastic_transport.Transport.perform_request = perform  # type: ignore[method-assign]

    real_get_conn = urllib3.HTTPConnectionPool._get_conn

    def get_conn(self: Any, timeout: Any = None) -> Any:
        started = time.perf_counter()
        try:
            return real_get_conn(self, timeout)
        finally:
            rec = _REQUEST.get()
            if rec is not None:
                rec["conn_wait"] = rec.get("conn_wait", 0.0) + time.perf_counter() - started

    urllib3.HTTPConnectionPool._get_conn = get_conn  # type: ignore[method-assign]

    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            took = time.perf_counter() - gc_started[0]
            line = json.dumps({"gc": info["generation"], "at": gc_started[0], "s": took})
            ticks.write(line + "\n")  # one write: the loop's lag timer writes here too

    gc.callbacks.append(on_gc)
    app = create_app()

    async def lag() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            late = time.perf_counter() - before - 0.005
            if late > 0.002:
                ticks.write(json.dumps({"lag": late, "at": before}) + "\n")

    async def probe(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            asyncio.get_running_loop().create_task(lag())
        if scope["type"] != "http" or not scope["path"].endswith("/incidents"):
            await app(scope, receive, send)
            return
        rec: dict[str, Any] = {"arrive": time.perf_counter(), "port": scope["client"][1]}
        _REQUEST.set(rec)

        async def sending(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                rec["done"] = time.perf_counter()

        await app(scope, receive, sending)
        out.write(json.dumps(rec) + "\n")

    return probe


def _start(env: dict[str, str], workers: int) -> tuple[subprocess.Popen[bytes], str]:
    from api_incidents import _free_port, wait_healthy

    port = _free_port()
    cmd = [
        sys.executable, "-m", "uvicorn", "api_tail:probed_app", "--factory",
        "--app-dir", str(ROOT / "bench"), "--port", str(port), "--workers", str(workers),
        "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(cmd, env=env, cwd=ROOT)
    return server, wait_healthy(server, port, "the probed server")


async def _list_load(base: str, token: str, clients: int, requests: int) -> dict[str, Any]:
    from api_incidents import _clients, list_client

    async with list_client(base, token, clients) as (_, listing):
        await _clients(clients, list(range(clients * 2)), listing)  # warm-up
        mark = time.perf_counter()
        t = time.perf_counter()
        got = await _clients(clients, list(range(requests)), listing)
        until = time.perf_counter()
        rate = requests / (until - t)
    return {"latencies": got, "rate": rate, "mark": mark, "until": until}


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def _stages(probe_dir: Path, since: float, until: float) -> dict[str, Any]:
    """The records of the measured requests (after the warm-up, within this round), stage by
    stage. ``perf_counter`` is CLOCK_MONOTONIC, one clock for the processes of one machine."""
    recs: list[dict[str, Any]] = []
    pids: dict[str, int] = {}
    ports: dict[str, set[int]] = defaultdict(set)
    for f in probe_dir.glob("requests-*.jsonl"):
        pid = f.stem.split("-")[1]
        for line in f.read_text().splitlines():
            r = json.loads(line)
            if "done" not in r or "submit" not in r:
                continue
            r["pid"] = pid
            recs.append(r)
    recs = [r for r in recs if since <= r["arrive"] <= until]
    for r in recs:
        pids[r["pid"]] = pids.get(r["pid"], 0) + 1
        ports[r["pid"]].add(r["port"])
    gcs: list[dict[str, Any]] = []
    lags: list[dict[str, Any]] = []
    for f in probe_dir.glob("worker-*.jsonl"):
        for line in f.read_text().splitlines():
            t = json.loads(line)
            if since <= t["at"] <= until:
                (gcs if "gc" in t else lags).append(t)
    stage = {
        "total": [r["done"] - r["arrive"] for r in recs],
        "before pool": [r["submit"] - r["arrive"] for r in recs],
        "pool queue": [r["start"] - r["submit"] for r in recs],
        "handler": [r["end"] - r["start"] for r in recs],
        "  of which ES client": [r.get("es", 0.0) for r in recs],
        "  of which conn wait": [r.get("conn_wait", 0.0) for r in recs],
        "  of which CPU": [r.get("cpu", 0.0) for r in recs],
        "back to loop": [r["resume"] - r["end"] for r in recs],
        "respond": [r["done"] - r["resume"] for r in recs],
    }
    slow_cut = _p(stage["total"], 0.95)
    slow = [i for i, r in enumerate(recs) if r["done"] - r["arrive"] >= slow_cut]
    return {
        "n": len(recs),
        "stage": stage,
        "slow": slow,
        "per_worker": {pid: (n, len(ports[pid])) for pid, n in pids.items()},
        "gc": gcs,
        "lag": lags,
    }


def main() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from api_incidents import admin_server_env, fresh_index, load
    from api_rounds import raw_async

    from soc.es.templates import teardown

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--variant", action="append", default=[], help="name:SOC_X=1,SOC_Y=2 (repeatable)"
    )
    args = parser.parse_args()
    variants: dict[str, dict[str, str]] = {}
    for v in args.variant or ["default:"]:
        name, _, pairs = v.partition(":")
        variants[name] = dict(p.split("=", 1) for p in pairs.split(",") if p)

    prefix, settings, es, indices = fresh_index()
    servers: dict[str, tuple[subprocess.Popen[bytes], str, Path]] = {}
    results: dict[str, list[dict[str, Any]]] = defaultdict(list)
    loads: list[float] = []
    try:
        load(es, indices, args.incidents)
        token, env = admin_server_env(prefix, settings, es, indices)
        for name, extra in variants.items():
            probe_dir = Path(tempfile.mkdtemp(prefix=f"probe-{name}-"))
            workers = int(extra.get("WORKERS", args.workers))  # WORKERS=3: uvicorn's, not soc's
            soc_env = {k: v for k, v in extra.items() if k != "WORKERS"}
            server, base = _start({**env, **soc_env, PROBE_DIR_ENV: str(probe_dir)}, workers)
            servers[name] = (server, base, probe_dir)
        es_url = settings.effective_es_url.split(",")[0].rstrip("/")
        names = list(variants)
        for r in range(args.rounds):
            loads.append(os.getloadavg()[0])
            results["raw"].append(
                asyncio.run(raw_async(es_url, {}, indices.incidents, args.clients, args.requests))
            )
            for name in names if r % 2 == 0 else names[::-1]:
                _, base, probe_dir = servers[name]
                got = asyncio.run(_list_load(base, token, args.clients, args.requests))
                time.sleep(0.3)  # the workers' last lines
                got["probe"] = _stages(probe_dir, got["mark"], got["until"])
                results[name].append(got)
            print(
                f"round {r + 1} load {loads[-1]:.1f}: raw p95 "
                f"{results['raw'][-1]['client'][1]:.0f} ms, "
                + ", ".join(
                    f"{n} p95 {_p(results[n][-1]['latencies'], 0.95) * 1000:.0f} ms "
                    f"{results[n][-1]['rate']:.0f}/s"
                    for n in names
                ),
                flush=True,
            )
        write_report(args, variants, results, loads)
    finally:
        for server, _, _ in servers.values():
            server.terminate()
            server.wait(timeout=30)
        teardown(es, prefix)


def _ms(x: float) -> str:
    return f"{x * 1000:.1f}"


def write_report(
    args: argparse.Namespace,
    variants: dict[str, dict[str, str]],
    results: dict[str, list[dict[str, Any]]],
    loads: list[float],
) -> None:
    flags = " ".join(
        f"--variant {n}:{','.join(f'{k}={v}' for k, v in e.items())}" for n, e in variants.items()
    )
    lines = [
        "# Incident list: where the p95 comes from",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} cores),"
        f" Python {platform.python_version()}. `bench/api_tail.py --incidents {args.incidents}"
        f" --clients {args.clients} --requests {args.requests} --rounds {args.rounds}"
        f" --workers {args.workers} {flags}`.",
        "Load average (1 min) per round: " + ", ".join(f"{x:.1f}" for x in loads),
        "",
        "Client side, median over the rounds (min-max):",
        "",
        "| side | p50 ms | p95 ms | req/s | p95 / raw p95 |",
        "| --- | --- | --- | --- | --- |",
    ]
    raw = results["raw"]

    def med(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"

    lines.append(
        f"| raw search, httpx2 async | {med([x['client'][0] for x in raw])} |"
        f" {med([x['client'][1] for x in raw])} | {med([x['rate'] for x in raw])} | |"
    )
    for name in variants:
        runs = results[name]
        ratios = [
            _p(x["latencies"], 0.95) * 1000 / y["client"][1] for x, y in zip(runs, raw, strict=True)
        ]
        lines.append(
            f"| {name} | {med([_p(x['latencies'], 0.5) * 1000 for x in runs])} |"
            f" {med([_p(x['latencies'], 0.95) * 1000 for x in runs])} |"
            f" {med([x['rate'] for x in runs])} |"
            f" {med(ratios)} |"
        )
    for name in variants:
        lines += [
            "",
            f"### {name}: server-side stages (ms), all rounds' measured requests",
            "",
            "| stage | p50 | p95 | mean | mean over the slowest 5% |",
            "| --- | --- | --- | --- | --- |",
        ]
        probes = [x["probe"] for x in results[name]]
        stages: dict[str, list[float]] = defaultdict(list)
        slow: dict[str, list[float]] = defaultdict(list)
        for p in probes:
            for key, values in p["stage"].items():
                stages[key] += values
                slow[key] += [values[i] for i in p["slow"]]
        for key, values in stages.items():
            lines.append(
                f"| {key} | {_ms(_p(values, 0.5))} | {_ms(_p(values, 0.95))} |"
                f" {_ms(statistics.fmean(values))} | {_ms(statistics.fmean(slow[key]))} |"
            )
        split = "; ".join(
            ", ".join(f"{n} requests on {c} connections" for n, c in p["per_worker"].values())
            for p in probes
        )
        gcs = [g for p in probes for g in p["gc"]]
        lags = [g["lag"] for p in probes for g in p["lag"]]
        lines += [
            "",
            f"- requests per worker, per round: {split}",
            f"- GC collections: {len(gcs)} (gen 2: {sum(1 for g in gcs if g['gc'] == 2)}),"
            f" longest {_ms(max((g['s'] for g in gcs), default=0))} ms,"
            f" total {_ms(sum(g['s'] for g in gcs))} ms",
            f"- event loop late by > 2 ms: {len(lags)} times, p95 of those"
            f" {_ms(_p(lags, 0.95)) if lags else '-'} ms, longest"
            f" {_ms(max(lags, default=0))} ms",
        ]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
