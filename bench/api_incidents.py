"""Benchmark of the incident API: p50/p95 latency of the filtered incident list and of a transition
at N concurrent clients with M incidents in the index, next to the raw Elasticsearch time of the
same search in the same run.

One command, one report (``bench/reports/api-incidents.md``)::

    SOC_ES_URL=http://127.0.0.1:9250 .venv/bin/python bench/api_incidents.py
    .venv/bin/python bench/api_incidents.py --incidents 5000 --requests 500   # quicker

It starts `soc api` (uvicorn, ``--workers`` processes, 2 by default: one per core) as a
subprocess on a free port, writes into a fresh index prefix (``apibench-<time>``) and deletes it
afterwards. ``--baseline DIR`` measures, in the same run and over the same index, the `soc api` of
another checkout (its own ``.venv``; e.g. a worktree of an older commit) with
``--baseline-workers`` processes, and reports the ratios of this tree against it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import yaml
from elasticsearch import Elasticsearch, helpers

from soc.alerts.models import Severity
from soc.auth import service as auth
from soc.auth.models import Role, User
from soc.config import Settings, load_settings
from soc.es.client import make_client, wait_until_healthy
from soc.es.indices import Indices
from soc.es.templates import setup, teardown
from soc.incidents.models import Incident, IncidentStatus, TimelineEntry
from soc.incidents.service import IncidentFilter, query
from soc.localities import catalogue

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "bench" / "reports" / "api-incidents.md"
ADMIN = User(name="bench", role=Role.ADMIN)
T0 = datetime(2026, 11, 1, tzinfo=UTC)
SERVICES = ["vneid", "otp-gateway", "one-stop-shop", "portal-sync", "web-portal", "payment"]
#: The filtered list every client asks for (open incidents of one province and service).
LIST_PARAMS = {"province": "01", "service": "vneid", "open": "true", "size": "50"}


def _incidents(n: int) -> Any:
    rng = random.Random(7)
    wards = catalogue().wards
    severities = list(Severity)
    statuses = [IncidentStatus.NEW] * 6 + [IncidentStatus.ACKNOWLEDGED, IncidentStatus.RESOLVED]
    for i in range(n):
        w = rng.choice(wards)
        p = catalogue().province_of(w)
        at = T0 + timedelta(seconds=rng.randrange(30 * 86400))
        inc = Incident(
            id=f"bench-{i:07d}",
            title=f"{rng.choice(SERVICES)} failures in {w.name}",
            summary="generated for the benchmark",
            status=rng.choice(statuses),
            severity=rng.choice(severities),
            group_key=f"k{i}",
            cause_key=f"c{i % 500}",
            detector="sigma",
            rule_id=f"rule-{i % 40}",
            rule_name="bench rule",
            province_code=p.code,
            province_name=p.name,
            ward_code=w.code,
            ward_name=w.name,
            service=rng.choice(SERVICES),
            alert_ids=(f"a{i}",),
            alert_count=1,
            first_seen=at,
            last_seen=at,
            created=at,
            updated=at,
            ack_due=at + timedelta(minutes=30),
            resolve_due=at + timedelta(hours=4),
            timeline=(TimelineEntry(at=at, actor="soc-grouping", action="open"),),
        )
        yield {"_index": "", "_id": inc.id, "_op_type": "create", "_source": inc.to_doc()}


def load(es: Elasticsearch, indices: Indices, n: int) -> float:
    started = time.perf_counter()
    actions = ({**a, "_index": indices.incidents} for a in _incidents(n))
    for ok, item in helpers.streaming_bulk(es, actions, chunk_size=2000, raise_on_error=False):
        if not ok:
            raise SystemExit(f"bulk load failed: {item}")
    es.indices.refresh(index=indices.incidents)
    return time.perf_counter() - started


def _pct(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return (
        statistics.median(ordered) * 1000,
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000,
    )


async def _clients(n_clients: int, jobs: list[Any], work: Any) -> list[float]:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    latencies: list[float] = []

    async def client() -> None:
        while not queue.empty():
            job = queue.get_nowait()
            latencies.append(await work(job))

    await asyncio.gather(*(client() for _ in range(n_clients)))
    return latencies


@asynccontextmanager
async def list_client(
    base: str, token: str, clients: int
) -> AsyncIterator[tuple[httpx2.AsyncClient, Callable[[Any], Awaitable[float]]]]:
    """An admin's client for ``clients`` concurrent callers, and ``listing``: one timed GET of
    the incident list (:data:`LIST_PARAMS`), the request every API bench measures."""
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx2.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=60) as c:

        async def listing(_: Any) -> float:
            started = time.perf_counter()
            r = await c.get("/api/v1/incidents", params=LIST_PARAMS)
            assert r.status_code == 200, r.text
            return time.perf_counter() - started

        yield c, listing


async def api_runs(
    base: str, token: str, clients: int, requests: int, ids: list[str]
) -> dict[str, Any]:
    async with list_client(base, token, clients) as (c, listing):

        async def transition(incident_id: str) -> float:
            got = await c.get(f"/api/v1/incidents/{incident_id}")
            started = time.perf_counter()
            r = await c.post(
                f"/api/v1/incidents/{incident_id}/transition",
                json={"to": "acknowledged"},
                headers={"If-Match": got.headers["ETag"]},
            )
            assert r.status_code == 200, r.text
            return time.perf_counter() - started

        await _clients(clients, list(range(clients * 2)), listing)  # warm-up
        t = time.perf_counter()
        lists = await _clients(clients, list(range(requests)), listing)
        list_rate = requests / (time.perf_counter() - t)
        t = time.perf_counter()
        moves = await _clients(clients, ids, transition)
        move_rate = len(ids) / (time.perf_counter() - t)
    return {
        "list": _pct(lists),
        "list_rate": list_rate,
        "transition": _pct(moves),
        "transition_rate": move_rate,
    }


def raw_es(es: Elasticsearch, indices: Indices, clients: int, requests: int) -> dict[str, Any]:
    flt = IncidentFilter(province="01", service="vneid", open_only=True, size=50)
    scope = query(flt, ADMIN)
    order = [{"incident.last_seen": "desc"}, {"incident.id": "asc"}]
    took: list[float] = []

    def one(_: int) -> float:
        started = time.perf_counter()
        found = es.search(
            index=indices.incidents, query=scope, size=50, track_total_hits=True, sort=order
        )
        took.append(found["took"] / 1000)
        return time.perf_counter() - started

    with ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(one, range(requests)))
    total = es.count(index=indices.incidents, query=scope)["count"]
    return {"client": _pct(latencies), "took": _pct(took), "matches": total}


def _start_server(
    soc: Path, workers: int, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    server = subprocess.Popen(
        [str(soc), "api", "--port", str(port), "--workers", str(workers)], env=env, cwd=soc.parent
    )
    return server, wait_healthy(server, port, f"{soc} api")


def wait_healthy(server: subprocess.Popen[bytes], port: int, what: str) -> str:
    """The server's base address once its health route answers; stopped, and exit, after 120 s."""
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx2.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                return base
        except httpx2.HTTPError:
            pass
        time.sleep(0.5)
    server.terminate()
    raise SystemExit(f"{what} did not answer within 120 s")


def _measure(
    soc: Path, workers: int, env: dict[str, str], token: str, args: argparse.Namespace,
    ids: list[str],
) -> dict[str, Any]:  # fmt: skip
    server, base = _start_server(soc, workers, env)
    try:
        return asyncio.run(api_runs(base, token, args.clients, args.requests, ids))
    finally:
        server.terminate()
        server.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_index() -> tuple[str, Settings, Elasticsearch, Indices]:
    """A new index prefix (``apibench-<time>``) with soc's templates and indices installed."""
    prefix = f"apibench-{int(time.time())}"
    settings = load_settings(index_prefix=prefix)
    es = make_client(settings).options(request_timeout=120)
    wait_until_healthy(es, timeout=60)
    indices = Indices(prefix)
    setup(es, indices, replicas=settings.replicas)
    return prefix, settings, es, indices


def admin_server_env(
    prefix: str, settings: Settings, es: Elasticsearch, indices: Indices
) -> tuple[str, dict[str, str]]:
    """An admin token and the environment of a ``soc api`` server on that prefix."""
    users = Path(tempfile.mkdtemp()) / "users.yaml"
    users.write_text(yaml.safe_dump({"users": [{"name": "bench", "role": "admin"}]}))
    token, _ = auth.create_token(es, indices, ADMIN, "bench", auth.utcnow())
    env = {
        **os.environ,
        "SOC_INDEX_PREFIX": prefix,
        "SOC_AUTH_USERS_FILE": str(users),
        "SOC_ES_URL": settings.effective_es_url,
        "SOC_LOG_LEVEL": "WARNING",
    }
    return token, env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--transitions", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn processes of this tree")
    parser.add_argument("--baseline", type=Path, help="another checkout to measure alongside")
    parser.add_argument("--baseline-workers", type=int, default=1)
    args = parser.parse_args()

    prefix, settings, es, indices = fresh_index()
    try:
        load_s = load(es, indices, args.incidents)
        token, env = admin_server_env(prefix, settings, es, indices)
        runs = 2 if args.baseline else 1
        new_ids = [
            h["_id"]
            for h in es.search(
                index=indices.incidents,
                query={"term": {"incident.status": "new"}},
                size=args.transitions * runs,
                sort=[{"incident.id": "asc"}],
                source=False,
            )["hits"]["hits"]
        ]
        soc = Path(sys.executable).parent / "soc"
        results: dict[str, dict[str, Any]] = {}
        if args.baseline:
            base_soc = args.baseline.resolve() / ".venv" / "bin" / "soc"
            results["baseline"] = _measure(
                base_soc, args.baseline_workers, env, token, args, new_ids[args.transitions :]
            )
        results["this tree"] = _measure(
            soc, args.workers, env, token, args, new_ids[: args.transitions]
        )
        raw = raw_es(es, indices, args.clients, args.requests)
        write_report(args, load_s, results, raw)
    finally:
        teardown(es, prefix)


def _commit(tree: Path) -> str:
    got = subprocess.run(
        ["git", "-C", str(tree), "log", "-1", "--format=%h %s"], capture_output=True, text=True
    )
    return got.stdout.strip()[:90] or "?"


def write_report(
    args: argparse.Namespace,
    load_s: float,
    results: dict[str, dict[str, Any]],
    raw: dict[str, Any],
) -> None:
    servers = {"this tree": (ROOT, args.workers)}
    if args.baseline:
        servers["baseline"] = (args.baseline.resolve(), args.baseline_workers)
    cmd = (
        f"bench/api_incidents.py --incidents {args.incidents} --clients {args.clients}"
        f" --requests {args.requests} --transitions {args.transitions} --workers {args.workers}"
    )
    if args.baseline:
        cmd += f" --baseline {args.baseline} --baseline-workers {args.baseline_workers}"
    lines = [
        "# Incident API latency",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} cores),"
        f" Python {platform.python_version()}. `{cmd}`.",
        "The servers (one after the other), the load generator and the Elasticsearch node share the"
        f" machine; load average at the end {os.getloadavg()[0]:.1f}.",
        "",
        *(
            f"- {name}: `{_commit(tree)}`, `soc api --workers {workers}`"
            for name, (tree, workers) in servers.items()
        ),
        f"- incidents in the index: {args.incidents:,} (bulk-loaded in {load_s:.1f} s)",
        f"- list filter: `{LIST_PARAMS}` → {raw['matches']:,} matches, page of 50",
        "",
        "| measurement | p50 ms | p95 ms | throughput |",
        "| --- | --- | --- | --- |",
    ]
    for name, api in results.items():
        lines += [
            f"| {name}: API `GET /incidents` (filtered list), {args.clients} clients |"
            f" {api['list'][0]:.1f} | {api['list'][1]:.1f} | {api['list_rate']:.0f} req/s |",
            f"| {name}: API `POST /incidents/{{id}}/transition` (If-Match), {args.clients} clients"
            f" | {api['transition'][0]:.1f} | {api['transition'][1]:.1f} |"
            f" {api['transition_rate']:.0f} req/s |",
        ]
    lines += [
        f"| raw ES search, same query, {args.clients} threads (client-side) |"
        f" {raw['client'][0]:.1f} | {raw['client'][1]:.1f} | |",
        f"| raw ES search, same query (`took`, server-side) | {raw['took'][0]:.1f} |"
        f" {raw['took'][1]:.1f} | |",
        "",
        "Ratios of this run:",
        "",
    ]
    now = results["this tree"]
    lines.append(
        f"- list p95 / raw search p95 (client-side): {now['list'][1] / raw['client'][1]:.2f}"
    )
    if "baseline" in results:
        old = results["baseline"]
        lines += [
            f"- baseline list p95 / raw search p95: {old['list'][1] / raw['client'][1]:.2f}",
            f"- list throughput, this tree / baseline: {now['list_rate'] / old['list_rate']:.2f}",
            "- transition throughput, this tree / baseline:"
            f" {now['transition_rate'] / old['transition_rate']:.2f}",
        ]
    lines += [
        "",
        "The transition latency covers read, check, conditional write and the audit record (three",
        "Elasticsearch requests); the list covers authentication and one search.",
    ]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
