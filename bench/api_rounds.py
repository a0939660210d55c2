"""Interleaved rounds of the incident API benchmark: the servers (this tree and an older
checkout's, started once, side by side) and the raw Elasticsearch search are measured in short
alternating rounds over one index, so a burst of someone else's work on the shared machine lands
on every side alike. Reports each side's median and spread over the rounds, the per-round
ratios, the load average, the load generator's own CPU share and each server's CPU per request
(from /proc: the one figure the other engineers' load does not move much).

    SOC_ES_URL=http://127.0.0.1:9250 .venv/bin/python bench/api_rounds.py \
        --baseline /work/wt-old --baseline-workers 1,2 --rounds 6

Writes ``bench/reports/api-incidents-rounds.md``. The index prefix (``apibench-<time>``) is
deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import httpx2
from api_incidents import (
    ADMIN,
    LIST_PARAMS,
    ROOT,
    _clients,
    _commit,
    _pct,
    _start_server,
    admin_server_env,
    api_runs,
    fresh_index,
    load,
    raw_es,
)

from soc.es.templates import teardown
from soc.incidents.models import DETAIL_FIELDS
from soc.incidents.service import IncidentFilter, query

REPORT = ROOT / "bench" / "reports" / "api-incidents-rounds.md"


def _timed(work: Callable[[], dict[str, Any]], server: int | None = None) -> dict[str, Any]:
    """Runs ``work`` and adds the wall time, this process's CPU share and the load average, and
    with ``server`` (a pid) the CPU seconds that server's processes used meanwhile."""
    wall, cpu = time.perf_counter(), time.process_time()
    before = _tree_cpu(server) if server else 0.0
    got = work()
    wall = time.perf_counter() - wall
    got["client_cpu"] = (time.process_time() - cpu) / wall
    got["load"] = os.getloadavg()[0]
    if server:
        got["server_cpu"] = _tree_cpu(server) - before
    return got


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its children (uvicorn's workers), from
    /proc: what the server itself costs, whatever else runs on the shared machine."""
    kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    total = 0
    for p in [str(pid), *kids.split()]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # a child that ended meanwhile
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def raw_async(
    es_url: str, headers: dict[str, str], index: str, clients: int, requests: int
) -> dict[str, Any]:
    """The list's search sent straight to Elasticsearch by the load generator the API side uses
    (httpx2 async, ``clients`` connections, one process): the reference for the p95 ratio. The
    request is the one the list sends (``soc.incidents.service._page``), request cache included,
    so the reference gains whatever Elasticsearch saves the list."""
    body = {
        "query": query(IncidentFilter(province="01", service="vneid", open_only=True), ADMIN),
        "sort": [{"incident.last_seen": "desc"}, {"incident.id": "asc"}],
        "size": 50,
        "track_total_hits": True,
        "seq_no_primary_term": True,
        "_source": {"excludes": list(DETAIL_FIELDS)},
    }
    limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx2.AsyncClient(base_url=es_url, headers=headers, limits=limits, timeout=60) as c:

        async def one(_: int) -> float:
            started = time.perf_counter()
            r = await c.post(f"/{index}/_search?request_cache=true", json=body)
            assert r.status_code == 200, r.text
            return time.perf_counter() - started

        await _clients(clients, list(range(clients * 2)), one)  # warm-up, as for the API
        t = time.perf_counter()
        latencies = await _clients(clients, list(range(requests)), one)
        rate = requests / (time.perf_counter() - t)
    return {"client": _pct(latencies), "rate": rate}


def _cpu_per(side: dict[str, Any]) -> float:
    return float(side["server_cpu"]) / int(side["requests"])


def _med(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=600, help="list requests per side a round")
    parser.add_argument("--transitions", type=int, default=150, help="per side a round")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--baseline-workers", default="1", help="comma-separated, e.g. 1,2")
    args = parser.parse_args()

    prefix, settings, es, indices = fresh_index()
    servers: dict[str, subprocess.Popen[bytes]] = {}
    try:
        load_s = load(es, indices, args.incidents)
        token, env = admin_server_env(prefix, settings, es, indices)
        old_soc = args.baseline.resolve() / ".venv" / "bin" / "soc"
        sides = {
            f"baseline, {w} worker{'s' * (int(w) > 1)}": (old_soc, int(w))
            for w in args.baseline_workers.split(",")
        }
        sides[f"this tree, {args.workers} workers"] = (
            Path(sys.executable).parent / "soc",
            args.workers,
        )
        bases = {}
        for name, (soc, workers) in sides.items():
            servers[name], bases[name] = _start_server(soc, workers, env)
        need = args.transitions * args.rounds * len(sides)
        ids = [
            h["_id"]
            for h in es.search(
                index=indices.incidents,
                query={"term": {"incident.status": "new"}},
                size=need,
                sort=[{"incident.id": "asc"}],
                source=False,
            )["hits"]["hits"]
        ]
        es_url = settings.effective_es_url.split(",")[0].rstrip("/")

        def raw_round() -> dict[str, Any]:
            return asyncio.run(
                raw_async(es_url, {}, indices.incidents, args.clients, args.requests)
            )

        rounds: list[dict[str, dict[str, Any]]] = []
        names = list(sides)
        for r in range(args.rounds):
            order = names if r % 2 == 0 else names[::-1]
            got: dict[str, dict[str, Any]] = {
                "raw": _timed(lambda: raw_es(es, indices, args.clients, args.requests)),
                "raw async": _timed(raw_round),
            }
            for name in order:
                mine, ids = ids[: args.transitions], ids[args.transitions :]
                run = api_runs(bases[name], token, args.clients, args.requests, mine)
                got[name] = _timed(partial(asyncio.run, run), servers[name].pid)
                # Every request the server answered: warm-up and list, and a read + a
                # transition per id.
                got[name]["requests"] = args.clients * 2 + args.requests + 2 * len(mine)
            rounds.append(got)
            print(f"round {r + 1}: " + ", ".join(_brief(k, v) for k, v in got.items()), flush=True)
        write_report(args, load_s, sides, rounds)
    finally:
        for server in servers.values():
            server.terminate()
            server.wait(timeout=30)
        teardown(es, prefix)


def _brief(name: str, got: dict[str, Any]) -> str:
    if name.startswith("raw"):
        return f"{name} p95 {got['client'][1]:.0f} ms"
    return f"{name}: {got['list_rate']:.0f} req/s p95 {got['list'][1]:.0f} ms"


def write_report(
    args: argparse.Namespace,
    load_s: float,
    sides: dict[str, tuple[Path, int]],
    rounds: list[dict[str, dict[str, Any]]],
) -> None:
    names = list(sides)
    new = names[-1]
    lines = [
        "# Incident API latency, interleaved rounds",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} cores),"
        f" Python {platform.python_version()}. `bench/api_rounds.py --incidents {args.incidents}"
        f" --clients {args.clients} --rounds {args.rounds} --requests {args.requests}"
        f" --transitions {args.transitions} --workers {args.workers} --baseline {args.baseline}"
        f" --baseline-workers {args.baseline_workers}`.",
        "Load average (1 min) per round: " + ", ".join(f"{x['raw']['load']:.1f}" for x in rounds),
        "",
        f"- this tree: `{_commit(ROOT)}`",
        f"- baseline: `{_commit(args.baseline.resolve())}`",
        f"- incidents in the index: {args.incidents:,} (bulk-loaded in {load_s:.1f} s);"
        f" list filter `{LIST_PARAMS}` → {rounds[0]['raw']['matches']:,} matches",
        "- each round: the raw search (sent by httpx2 async like the API's load, the reference;"
        f" and by {args.clients} threads of the Elasticsearch client, as bench/api_incidents.py"
        " does), then"
        " every server in turn (order reversed every other round),"
        f" {args.requests} list requests and {args.transitions} transitions each,"
        f" {args.clients} concurrent clients in one Python process (httpx2 async)",
        "",
        "Median over the rounds (min-max):",
        "",
        "| side | list p50 ms | list p95 ms | list req/s | transition p95 ms | transition req/s"
        " | load generator CPU (cores) | server CPU ms per request |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in names:
        col = [x[name] for x in rounds]
        lines.append(
            f"| {name} | {_med([c['list'][0] for c in col])} | {_med([c['list'][1] for c in col])}"
            f" | {_med([c['list_rate'] for c in col])} | {_med([c['transition'][1] for c in col])}"
            f" | {_med([c['transition_rate'] for c in col])}"
            f" | {_med([c['client_cpu'] for c in col])}"
            f" | {_med([c['server_cpu'] * 1000 / c['requests'] for c in col])} |"
        )
    raw = [x["raw"] for x in rounds]
    fast = [x["raw async"] for x in rounds]
    lines += [
        f"| raw ES search, httpx2 async (the reference) | {_med([c['client'][0] for c in fast])} |"
        f" {_med([c['client'][1] for c in fast])} | {_med([c['rate'] for c in fast])} | | |"
        f" {_med([c['client_cpu'] for c in fast])} | |",
        f"| raw ES search, {args.clients} threads of the ES client |"
        f" {_med([c['client'][0] for c in raw])} |"
        f" {_med([c['client'][1] for c in raw])} | | | |"
        f" {_med([c['client_cpu'] for c in raw])} | |",
        f"| raw ES search (`took`) | {_med([c['took'][0] for c in raw])} |"
        f" {_med([c['took'][1] for c in raw])} | | | | | |",
        "",
        "Ratios, per round (median, min-max):",
        "",
        f"- {new}: list p95 / raw search p95 (same round): "
        + _med([x[new]["list"][1] / x["raw async"]["client"][1] for x in rounds]),
    ]
    for name in names[:-1]:
        lines += [
            f"- {name}: list p95 / raw search p95: "
            + _med([x[name]["list"][1] / x["raw async"]["client"][1] for x in rounds]),
            f"- list throughput, {new} / {name}: "
            + _med([x[new]["list_rate"] / x[name]["list_rate"] for x in rounds]),
            f"- transition throughput, {new} / {name}: "
            + _med([x[new]["transition_rate"] / x[name]["transition_rate"] for x in rounds]),
            f"- server CPU per request, {name} / {new}: "
            + _med([_cpu_per(x[name]) / _cpu_per(x[new]) for x in rounds]),
        ]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
