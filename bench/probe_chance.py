"""Lost health-probe checks in kept events (issue 18): how often a target fails alone, and how
often two or three of its failures fall within ``--within`` by chance, the figures behind
``probe_service_down``'s N (bench/reports/scenario-ttd.md, top section).

Reads every ``soc.probe.up: false`` event of the scored days, groups them per target
(``soc.probe.target``), clusters failures less than ``--within`` after the previous one, and
prints the lost checks per target-hour (clusters of one), the clusters by size and the gaps
inside the small ones (an outage scenario is a run of 10 and more)::

    SOC_ES_URL=http://127.0.0.1:9250 .venv/bin/python bench/probe_chance.py

Read-only.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from itertools import pairwise

from elasticsearch import helpers

from soc.config import load_settings
from soc.es.client import ensure_elasticsearch


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", default="qbench-1204-events-*", help="the kept events")
    parser.add_argument("--start", default="2026-11-20T17:00:00+00:00")
    parser.add_argument("--end", default="2026-11-24T17:00:00+00:00")
    parser.add_argument("--within", type=float, default=5.0, help="minutes")
    args = parser.parse_args()
    es, _ = ensure_elasticsearch(load_settings())
    start, end = datetime.fromisoformat(args.start), datetime.fromisoformat(args.end)
    scope = [{"term": {"event.dataset": "probe.http"}},
             {"range": {"@timestamp": {"gte": args.start, "lt": args.end}}}]  # fmt: skip
    aggs = {"t": {"cardinality": {"field": "soc.probe.target", "precision_threshold": 40000}}}
    targets = int(es.search(index=args.events, size=0, query={"bool": {"filter": scope}},
                            aggs=aggs)["aggregations"]["t"]["value"])  # fmt: skip
    failed = {"bool": {"filter": [*scope, {"term": {"soc.probe.up": False}}]}}
    by: dict[str, list[datetime]] = defaultdict(list)
    body = {"query": failed, "_source": ["@timestamp", "soc.probe.target"]}
    for hit in helpers.scan(es, index=args.events, query=body, size=5000):
        src = hit["_source"]
        by[src["soc"]["probe"]["target"]].append(datetime.fromisoformat(src["@timestamp"]))
    within = timedelta(minutes=args.within)
    sizes: Counter[int] = Counter()
    gaps: Counter[int] = Counter()
    for times in by.values():
        times.sort()
        run = [times[0]]
        for at in [*times[1:], None]:
            if at is not None and at - run[-1] <= within:
                run.append(at)
                continue
            sizes[min(len(run), 10)] += 1
            if len(run) < 10:
                gaps.update(round((b - a).total_seconds()) for a, b in pairwise(run))
            if at is not None:
                run = [at]
    hours = targets * (end - start) / timedelta(hours=1)
    print(f"{targets} targets, {hours:,.0f} target-hours; "
          f"{sum(len(t) for t in by.values()):,} failed checks")  # fmt: skip
    print(f"alone: {sizes[1]:,} = {sizes[1] / hours:.4f} per target-hour")
    print(f"clusters by size (10: 10 and more): {dict(sorted(sizes.items()))}")
    print(f"gaps (s) inside clusters under 10: {dict(sorted(gaps.items()))}")


if __name__ == "__main__":
    main()
