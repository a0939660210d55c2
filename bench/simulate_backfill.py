"""Benchmark of ``soc simulate backfill``: events per day, generation and indexing rate, store size.

One command, one report::

    .venv/bin/python bench/simulate_backfill.py --days 7          # managed node or SOC_ES_URL
    .venv/bin/python bench/simulate_backfill.py --days 1 --keep   # keep the indices afterwards

It backfills into a fresh index prefix (``simbench-<time>``), measures, writes
``bench/reports/simulate-backfill.md`` and deletes that prefix's indices unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from soc.config import load_settings
from soc.es.client import ensure_elasticsearch
from soc.es.indices import Indices
from soc.es.templates import setup, teardown
from soc.localities import catalogue
from soc.simulate import scenarios
from soc.simulate.flows import backfill
from soc.simulate.service import Plan, events, local_midnight

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "bench" / "reports" / "simulate-backfill.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--end", default="2026-11-23T00:00:00+07:00", help="ISO 8601, with offset")
    parser.add_argument("--keep", action="store_true", help="Keep the benchmark's indices.")
    args = parser.parse_args()

    end = datetime.fromisoformat(args.end).astimezone(UTC)
    start = end - timedelta(days=args.days)
    found = scenarios.load(ROOT / "scenarios" / "demo.yaml", catalogue(), local_midnight(start))
    plan = Plan(seed=1, scale=args.scale, scenarios=tuple(found))

    day = end - timedelta(days=1)
    began = time.monotonic()
    generated = sum(1 for _ in events(plan, day, end))
    gen_rate = generated / (time.monotonic() - began)

    prefix = f"simbench-{datetime.now(UTC):%Y%m%d%H%M%S}"
    settings = load_settings(index_prefix=prefix, index_replicas=0)
    es, _ = ensure_elasticsearch(settings)
    indices = Indices(prefix)
    setup(es, indices, replicas=0)
    report = backfill(es, indices, plan, start, end)
    es.indices.forcemerge(index=indices.events, max_num_segments=1)
    merged = es.indices.stats(index=indices.events, metric="store")
    merged_bytes = int(merged["_all"]["primaries"]["store"]["size_in_bytes"])
    if not args.keep:
        teardown(es, prefix)

    lines = [
        "# soc simulate backfill",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({os.cpu_count()} cores), "
        f"Elasticsearch {settings.effective_es_url} (heap per its own settings), "
        f"period {start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC, scale {args.scale}, "
        "all 34 provinces and 3,321 communes, all services, scenarios/demo.yaml.",
        "",
        "| local day | events |",
        "| --- | ---: |",
        *(f"| {d} | {n:,} |" for d, n in report.per_day.items()),
        "",
        f"- total: {report.total:,} events; indexed {report.created:,}, duplicates "
        f"{report.duplicates:,}, rejected {len(report.rejected)}",
        f"- generation alone: {gen_rate:,.0f} events/s (one process)",
        f"- generation + bulk indexing: {report.total / report.seconds:,.0f} events/s, "
        f"{report.seconds:.0f} s",
        f"- events store (primaries): {report.store_bytes / 2**20:,.0f} MiB after refresh, "
        f"{merged_bytes / 2**20:,.0f} MiB after force-merge "
        f"({merged_bytes / max(report.total, 1):.0f} bytes/event)",
    ]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
