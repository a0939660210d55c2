"""Judge the anomaly alerts of several kept bench runs as one detector (issue 18).

``bench/anomaly.py`` runs the bucket model and the live stream one after the other; the stream's
7-day warm-up is long, so a re-run of one engine is combined here with another run's alerts of
the other (e.g. ``--prefixes qfast,qrstream``: the 5-minute model of one run, the stream alone of
another, over the same kept events). Prints recall, precision, the false alerts and the time to
detect per scenario and per kind, at the bench's grace (``--grace-minutes``). Read-only.
"""

from __future__ import annotations

import argparse
import os
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from elasticsearch import Elasticsearch

from soc.config import load_settings
from soc.es.client import ensure_elasticsearch
from soc.es.indices import Indices
from soc.localities import catalogue
from soc.simulate import scenarios
from soc.simulate.evaluate import SeenAlert, evaluate, fetch_alerts
from soc.simulate.models import Label
from soc.simulate.service import Plan, local_midnight

SCENARIOS = Path(__file__).resolve().parent / "anomaly-scenarios.yaml"


def scored(end: str, days: int) -> tuple[datetime, datetime, list[Label]]:
    """The scored period of ``bench/anomaly.py`` (``--end``, ``--score-days``) and the labels of
    its scenarios (bench/anomaly-scenarios.yaml), as the bench made them."""
    score_end = datetime.fromisoformat(end).astimezone(UTC)
    score_start = local_midnight(score_end - timedelta(days=days))
    found = scenarios.load(SCENARIOS, catalogue(), score_start)
    plan = Plan(seed=1, scale=1.0, scenarios=tuple(found), probes=True)
    return score_start, score_end, plan.labels()


def anomaly_alerts(
    es: Elasticsearch, prefixes: list[str], start: datetime, end: datetime
) -> list[SeenAlert]:
    """The anomaly alerts of the kept runs ``<prefix>-alerts`` overlapping ``[start, end)``."""
    alerts: list[SeenAlert] = []
    for prefix in prefixes:
        mine = [a for a in fetch_alerts(es, Indices(prefix), start, end) if a.detector == "anomaly"]
        print(f"{prefix}: {len(mine)} anomaly alerts")
        alerts += mine
    return alerts


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--prefixes", required=True, help="Comma-separated index prefixes.")
    parser.add_argument("--end", default="2026-11-25T00:00:00+07:00")
    parser.add_argument("--score-days", type=int, default=4)
    parser.add_argument("--grace-minutes", type=float, default=10.0)
    args = parser.parse_args()
    score_start, score_end, labels = scored(args.end, args.score_days)
    es, _ = ensure_elasticsearch(load_settings())
    alerts = anomaly_alerts(es, args.prefixes.split(","), score_start, score_end)
    result = evaluate(labels, alerts, grace=timedelta(minutes=args.grace_minutes))
    print(
        f"alerts {result.alerts_total} precision {result.precision:.3f} recall "
        f"{result.recall:.3f} false {len(result.false_alerts)} (load "
        + ", ".join(f"{x:.1f}" for x in os.getloadavg())
        + f"; {datetime.now(UTC):%H:%M} UTC)"
    )
    for row in result.by_kind():
        ttd = row["median_ttd_s"]
        shown = f"{ttd / 60:.1f} min" if ttd is not None else "-"
        print(f"  {row['kind']}: {row['detected']}/{row['scenarios']}, median {shown}")
    first_rule: dict[str, str] = defaultdict(str)
    by_id = {a.id: a for a in alerts}
    for o in result.outcomes:
        hits = sorted((by_id[i] for i in o.alerts), key=lambda a: a.end)
        if hits:
            first_rule[o.scenario_id] = f"{hits[0].rule} {hits[0].start:%H:%M}-{hits[0].end:%H:%M}"
        ttd = f"{o.time_to_detect.total_seconds() / 60:.0f} min" if o.time_to_detect else "-"
        print(
            f"  {o.scenario_id} ({o.kind}): {ttd}, {len(o.alerts)} alerts, "
            f"first {first_rule[o.scenario_id]}"
        )
    for a in result.false_alerts:
        print(
            f"  false: {a.rule} province {a.province} ward {a.ward or '-'} {a.service} "
            f"{a.start:%m-%d %H:%M}-{a.end:%H:%M} UTC"
        )


if __name__ == "__main__":
    main()
