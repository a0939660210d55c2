"""What one step of the anomaly model costs, against the 15-minute bucket it replaced (issue 18).

On kept bench events and a model a bench run saved (``--var-dir``), times in interleaved rounds
(the machine is shared, so each round's pair sees the same load) the busy 15-minute bucket as
the model scored it before (``SOC_ANOMALY_BUCKET_MINUTES=15``: one window) and the 5-minute step
ending at the same time (the step and the 15 minutes ending at it), every part included
(aggregations, judging, silences, probes, sync checks), as ``bench/anomaly.py`` times one bucket.
Prints the medians, their ratio, per-15-minute cost (three steps against one bucket), the load
average and the time. ``--catch-up``: then one :func:`flows.run_due` after a 4-hour stop ending
at the busy hour (its alerts and checkpoint go to the prefix's own indices): how long the first
tick after a stop holds the job (at most ``MAX_STEPS_PER_RUN`` steps).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from anomaly import _busy_bucket, _timed_bucket  # bench/ is on sys.path when run as a script

from detectors.anomaly import flows
from detectors.anomaly.baseline import persistence
from soc.config import load_settings
from soc.es.client import ensure_elasticsearch
from soc.es.indices import Indices
from soc.es.templates import setup
from soc.simulate.service import local_midnight


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--var-dir", required=True, type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--end", default="2026-11-25T00:00:00+07:00")
    parser.add_argument("--catch-up", action="store_true")
    args = parser.parse_args()
    score_end = datetime.fromisoformat(args.end).astimezone(UTC)
    score_start = local_midnight(score_end - timedelta(days=4))
    model = persistence.load(persistence.latest(args.var_dir))
    old = load_settings(index_prefix=args.prefix, anomaly_bucket_minutes=15)
    new = load_settings(index_prefix=args.prefix, anomaly_bucket_minutes=5)
    es, _ = ensure_elasticsearch(new)
    indices = Indices(args.prefix)
    busy = _busy_bucket(score_start, 4)
    end = busy + timedelta(minutes=15)
    print(f"start {datetime.now(UTC):%H:%M:%S} UTC, load {os.getloadavg()[0]:.1f}", flush=True)
    olds: list[dict[str, float]] = []
    news: list[dict[str, float]] = []
    for i in range(args.rounds):
        first, second = (old, new) if i % 2 == 0 else (new, old)
        for s in (first, second):
            step = timedelta(minutes=s.anomaly_bucket_minutes)
            parts = _timed_bucket(es, indices, model, s, end - step, end)
            (olds if s is old else news).append(parts)
    o = statistics.median(p["total"] for p in olds)
    n = statistics.median(p["total"] for p in news)
    print(f"15-minute bucket (before) {o:.2f} s, 5-minute step {n:.2f} s: ratio {n / o:.2f}")
    print(f"per 15 minutes of events: three steps {3 * n:.2f} s = {3 * n / o:.2f}x the bucket")
    for name in ("features_commune", "features_province", "judge", "silence", "syncjob"):
        print(
            f"  {name}: before {statistics.median(p[name] for p in olds):.3f} s, "
            f"step {statistics.median(p[name] for p in news):.3f} s"
        )
    if args.catch_up:
        setup(es, indices, replicas=0)
        flows.save_checkpoint(es, indices, end - timedelta(hours=4), 0)
        began = time.perf_counter()
        found = flows.run_due(es, indices, new, model=model, now=end + timedelta(seconds=30))
        took = time.perf_counter() - began
        done = flows.done_until(es, indices)
        print(f"first run after a 4 h stop: {took:.1f} s, {len(found)} alerts, done until {done}")
    print(f"end {datetime.now(UTC):%H:%M:%S} UTC, load " + ", ".join(
        f"{x:.1f}" for x in os.getloadavg()))  # fmt: skip


if __name__ == "__main__":
    main()
