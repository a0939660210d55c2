"""Elasticsearch's own CPU per request for variants of the incident list's search (issue 23,
item 6): the node's process CPU time (user + system, from /proc) before and after N identical
requests, for each variant in turn, in interleaved rounds (order reversed every other round).

    SOC_ES_URL=http://127.0.0.1:9250 .venv/bin/python bench/api_search_cpu.py --rounds 4

On a machine whose node serves other work too, the figures are that node's CPU over the
requests, others' included: read the ratios to ``list today`` of the same round, not absolute
values. The node must run on this machine (its pid is asked of ``_nodes/_local``). Writes
``bench/reports/api-search-cpu.md``; the index prefix (``apibench-<time>``) is deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import orjson
from api_incidents import ADMIN, ROOT, _clients, fresh_index, load

from soc.es.templates import teardown
from soc.incidents.models import DETAIL_FIELDS
from soc.incidents.service import IncidentFilter, query

REPORT = ROOT / "bench" / "reports" / "api-search-cpu.md"
SORT = [{"incident.last_seen": "desc"}, {"incident.id": "asc"}]
HITS_ONLY = "hits.total.value,hits.hits._source,hits.hits._seq_no,hits.hits._primary_term"
SUMMARY_SOURCE = ["incident.*", "detector", "rule", "locality", "service", "entity"]


def variants(q: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Name -> (query string, body); the first is the list's search before this change."""

    def body(**changes: Any) -> dict[str, Any]:
        base = {
            "query": q,
            "sort": SORT,
            "size": 50,
            "track_total_hits": True,
            "seq_no_primary_term": True,
            "_source": {"excludes": list(DETAIL_FIELDS)},
        }
        return {**base, **changes}

    return {
        "list before (excludes, exact total)": ("", body()),
        "+ request_cache (the list now)": ("?request_cache=true", body()),
        "+ filter_path (hits only)": (f"?filter_path={HITS_ONLY}", body()),
        "_source includes instead of excludes": (
            "",
            body(_source={"includes": SUMMARY_SOURCE, "excludes": list(DETAIL_FIELDS)}),
        ),
        "whole _source (no filtering)": ("", body(_source=True)),
        "track_total_hits 10000": ("", body(track_total_hits=10_000)),
        "sort on last_seen only (no id tie-break)": ("", body(sort=SORT[:1])),
        "no _source (floor of the fetch)": ("", body(_source=False)),
        "request_cache, no _source": ("?request_cache=true", body(_source=False)),
        "empty search (size 0, match_none)": (
            "",
            {"query": {"match_none": {}}, "size": 0, "track_total_hits": False},
        ),
    }


def node_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    es_url: str, index: str, pid: int, chosen: dict[str, tuple[str, dict[str, Any]]],
    args: argparse.Namespace,
) -> tuple[dict[str, list[float]], dict[str, int], list[float]]:  # fmt: skip
    limits = httpx2.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    per: dict[str, list[float]] = {name: [] for name in chosen}
    size: dict[str, int] = {}
    loads: list[float] = []
    headers = {"content-type": "application/json"}
    async with httpx2.AsyncClient(base_url=es_url, limits=limits, timeout=60, headers=headers) as c:

        async def run(name: str, n: int) -> None:
            qs, body = chosen[name]
            raw = orjson.dumps(body)

            async def one(_: int) -> float:
                r = await c.post(f"/{index}/_search{qs}", content=raw)
                assert r.status_code == 200, r.text
                size[name] = len(r.content)
                return 0.0

            await _clients(args.clients, list(range(n)), one)

        for r in range(args.rounds):
            names = list(chosen) if r % 2 == 0 else list(chosen)[::-1]
            for name in names:
                await run(name, args.clients)  # warm-up (and fills the request cache)
                before = node_cpu(pid)
                await run(name, args.requests)
                per[name].append((node_cpu(pid) - before) * 1000 / args.requests)
            loads.append(os.getloadavg()[0])
            print(f"round {r + 1} done, load {loads[-1]:.1f}", flush=True)
    return per, size, loads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=400, help="per variant a round")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()

    prefix, settings, es, indices = fresh_index()
    try:
        load(es, indices, args.incidents)
        nodes = es.nodes.info(node_id="_local", metric="process")["nodes"]
        pid = int(next(iter(nodes.values()))["process"]["id"])
        es_url = settings.effective_es_url.split(",")[0].rstrip("/")
        narrow = query(IncidentFilter(province="01", service="vneid", open_only=True), ADMIN)
        tables = {}
        for label, q in (("filtered list (the API benchmark's)", narrow), ("whole list", None)):
            chosen = variants(q if q is not None else {"match_all": {}})
            matches = es.count(
                index=indices.incidents, query=chosen[next(iter(chosen))][1]["query"]
            )
            per, size, loads = asyncio.run(measure(es_url, indices.incidents, pid, chosen, args))
            tables[f"{label}, {matches['count']:,} matches"] = (per, size, loads)
        write_report(args, tables)
    finally:
        teardown(es, prefix)


def write_report(args: argparse.Namespace, tables: dict[str, Any]) -> None:
    lines = [
        "# Elasticsearch CPU per request, variants of the incident list's search",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} cores),"
        f" Python {platform.python_version()}. `bench/api_search_cpu.py --incidents"
        f" {args.incidents} --requests {args.requests} --clients {args.clients}"
        f" --rounds {args.rounds}`: the node's CPU time over {args.requests} identical searches"
        f" ({args.clients} connections, httpx2 async) per variant and round, rounds interleaved.",
        "",
    ]
    for label, (per, size, loads) in tables.items():
        first = next(iter(per))
        lines += [
            f"## {label}",
            "",
            "Load average (1 min) after each round: " + ", ".join(f"{x:.1f}" for x in loads),
            "",
            "| variant | response bytes | ES CPU ms per request, median (min-max) |"
            " / list before, per round: median (min-max) |",
            "| --- | --- | --- | --- |",
        ]
        for name, values in per.items():
            ratios = [v / b for v, b in zip(values, per[first], strict=True)]
            lines.append(
                f"| {name} | {size[name]:,} | {statistics.median(values):.2f}"
                f" ({min(values):.2f}-{max(values):.2f}) | {statistics.median(ratios):.2f}"
                f" ({min(ratios):.2f}-{max(ratios):.2f}) |"
            )
        lines.append("")
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
