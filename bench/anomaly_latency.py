"""The anomaly model's latency test alone, before and after issue 18's slow-request count and its
shift test, over kept scenario-bench events (read only): time to detect of each slow_degradation
scenario and the latency alerts that match no scenario.

    .venv/bin/python bench/anomaly_latency.py --prefix qbench-1204 [--step 5]

Trains the bucket model on the 7 days before the scored days exactly as ``bench/anomaly.py``
(hourly counts and per-key totals, no probes or sync jobs: the latency test needs neither), then
extracts every 15-minute bucket of the 4 scored days at both levels and runs, on the same rows and
baselines, the old test (the bucket's 95th percentile above 4x the usual one and the usual 99th,
at least ``anomaly_min_events`` events), the slow-request count of the tail alone (the key's slow
rung and above: :func:`detectors.anomaly.scoring.latency` on a baseline without its rung shares)
and the whole test (the tail and the shift of the rungs below). A firing row is an alert of its
key and bucket, matched to the scenarios of ``bench/anomaly-scenarios.yaml`` as the bench does
(grace two buckets). ``--step 5``: as the live model judges, every 5 minutes over the step and
the 15 minutes ending at it (the step's rows read once, the long window summed from them;
:mod:`detectors.anomaly.windows`), the short window first. Writes nothing to Elasticsearch.

``--cost N``: instead, N interleaved rounds of one busy bucket's aggregations (Monday 10:00
local, both levels) with and without the slow-request counts, and of the training totals: their
cost as a ratio measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from elasticsearch import Elasticsearch

from detectors.anomaly import flows, scoring, windows
from detectors.anomaly.baseline.model import Baseline, fit
from detectors.anomaly.features import (
    LATENCY_RUNGS_MS,
    Features,
    Level,
    _metrics,
    _sources,
    composite_pages,
    event_indices,
    traffic_query,
)
from detectors.anomaly.features import extract as extract_rows
from soc.alerts.anomaly import AnomalyKind
from soc.config import load_settings
from soc.es.client import ensure_elasticsearch
from soc.es.indices import Indices
from soc.localities import catalogue
from soc.simulate import scenarios
from soc.simulate.evaluate import Evaluation, SeenAlert, evaluate
from soc.simulate.service import Plan, local_midnight

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "bench" / "anomaly-scenarios.yaml"
BUCKET = timedelta(minutes=15)
OLD_SLOW_FACTOR = 4.0


def old_test(row: Features, base: Baseline, min_events: int) -> bool:
    """The latency test before issue 18's change (scoring.py at cbdddc0)."""
    if row.p95_ms is None or row.count < min_events or not base.p95_ms:
        return False
    return row.p95_ms > max(OLD_SLOW_FACTOR * base.p95_ms, base.p99_ms or 0.0)


def _p95_deviation(row: Features, base: Baseline) -> scoring.Deviation:
    """The old test's finding, for the listing."""
    return scoring.Deviation("p95", AnomalyKind.SLOWDOWN, "p95 over the old band",
                             row.p95_ms or 0.0, base.p95_ms or 0.0, 0.0, 0.0, 0.0)  # fmt: skip


def _alert(row: Features, start: datetime, end: datetime) -> SeenAlert:
    k = row.key
    return SeenAlert(
        id=f"{k.text()}@{start:%Y%m%dT%H%M}-{end:%H%M}",
        rule="anomaly-slowdown",
        detector="anomaly",
        start=start,
        end=end,
        province=k.province,
        ward=k.ward,
        service=k.service,
    )


def _read(
    es: Elasticsearch,
    indices: Indices,
    start: datetime,
    end: datetime,
    bucket: timedelta | None,
    slow: bool,
) -> float:
    """Seconds to read every row of ``[start, end)`` at both levels (the bucket's or the
    training totals' metrics), with or without the slow-request filters."""
    began = time.perf_counter()
    for level in Level:
        aggs = _metrics(bucket is None)
        if not slow:
            for i in range(len(LATENCY_RUNGS_MS)):
                del aggs[f"slower{i}"]
        for _ in composite_pages(es, event_indices(indices, start, end),
                                 traffic_query(start, end, level), _sources(level, bucket), aggs,
                                 size=5000 if bucket else 10000):  # fmt: skip
            pass
    return time.perf_counter() - began


def cost(es: Elasticsearch, indices: Indices, score_start: datetime, train_start: datetime,
         rounds: int) -> None:  # fmt: skip
    busy = score_start + timedelta(days=2, hours=10)  # Monday 10:00 local
    for name, start, end, bucket in [
        ("busy 15-minute bucket", busy, busy + BUCKET, BUCKET),
        ("training totals (7 days)", train_start, score_start, None),
    ]:
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(rounds):
            for slow in (False, True):
                times[slow].append(_read(es, indices, start, end, bucket, slow))
        with_, without = statistics.median(times[True]), statistics.median(times[False])
        print(f"{name}: {without:.2f} s without, {with_:.2f} s with the slow-request counts "
              f"(median of {rounds}): {with_ / without:.2f}x")  # fmt: skip


def kept_days_parser(doc: str) -> argparse.ArgumentParser:
    """The options of a bench over the scenario bench's kept events: their prefix and days."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--prefix", default="qbench-1204", help="Kept events' index prefix.")
    parser.add_argument("--end", default="2026-11-25T00:00:00+07:00", help="End of scored days.")
    parser.add_argument("--train-days", type=int, default=7)
    parser.add_argument("--score-days", type=int, default=4)
    return parser


def main() -> None:
    parser = kept_days_parser(__doc__ or "")
    parser.add_argument("--step", type=int, default=0,
                        help="Minutes: judge every step over it and 15 minutes (0: 15-minute "
                             "buckets).")  # fmt: skip
    parser.add_argument("--cost", type=int, default=0, help="Rounds of the cost comparison.")
    args = parser.parse_args()
    score_end = datetime.fromisoformat(args.end).astimezone(UTC)
    score_start = local_midnight(score_end - timedelta(days=args.score_days))
    train_start = score_start - timedelta(days=args.train_days)
    plan = Plan(seed=1, scale=1.0, scenarios=tuple(scenarios.load(SCENARIOS, catalogue(),
                                                                   score_start)))  # fmt: skip
    settings = load_settings(index_prefix=args.prefix)
    es, _ = ensure_elasticsearch(settings)
    indices = Indices(args.prefix)
    if args.cost:
        cost(es, indices, score_start, train_start, args.cost)
        return
    began = time.perf_counter()
    hourly, totals, clumps = flows.training_data(es, indices, train_start, score_start)
    model = fit(hourly, totals, train_start, score_start, clumps)
    print(f"trained in {time.perf_counter() - began:.0f} s: {len(model.baselines)} series")
    alpha = settings.anomaly_alpha
    tests: dict[str, Callable[[Features, Baseline], scoring.Deviation | None]] = {
        "before (p95 > 4x usual p95, >= 10 events)": lambda r, b: (
            _p95_deviation(r, b) if old_test(r, b, settings.anomaly_min_events) else None
        ),
        "tail (slow-request count from the slow rung up)": lambda r, b: scoring.latency(
            r, replace(b, rung_shares=()), alpha
        ),
        "tail + shift (and the rungs below at most 25 %)": lambda r, b: scoring.latency(
            r, b, alpha
        ),
    }
    fired: dict[str, list[SeenAlert]] = {name: [] for name in tests}
    detail: dict[str, list[str]] = {name: [] for name in tests}
    step = timedelta(minutes=args.step) if args.step else BUCKET
    long = BUCKET if args.step else step
    began, at = time.perf_counter(), score_start
    chunk = timedelta(hours=6)
    while at < score_end:
        # Step-long rows of a chunk (and the long window before it), judged at each step's end.
        by_key: dict[tuple[object, datetime], Features] = {}
        keys: dict[object, Features] = {}
        for level in Level:
            for row in extract_rows(es, indices, at - long + step, at + chunk, step, level):
                by_key[(row.key, row.bucket)] = row
                keys[row.key] = row
        end = at + step
        while end <= at + chunk:
            for key in keys:
                short = by_key.get((key, end - step))
                starts = [end - long + i * step for i in range(long // step)]
                parts = [by_key[(key, t)] for t in starts if (key, t) in by_key]
                if not parts:
                    continue
                base = model.baseline(parts[0].key)
                if base is None:
                    continue
                whole = windows.combine(parts[0].key, parts, end - long) if long > step else None
                for name, test in tests.items():
                    found: Features | None = short
                    dev = test(short, base) if short is not None else None
                    if dev is None and whole is not None:
                        found, dev = whole, test(whole, base)
                    if dev is None or found is None:
                        continue
                    fired[name].append(_alert(found, found.bucket, end))
                    detail[name].append(
                        f"{found.key.text()} {found.bucket + timedelta(hours=7):%a %H:%M}-"
                        f"{end + timedelta(hours=7):%H:%M} local: n={found.count} "
                        f"slower={list(found.slower[:10])}, slow rung {base.slow_ms} ms, "
                        f"{dev.label}: {dev.observed:.2f} (usual {dev.expected:.2e}) "
                        f"p={dev.p_value:.1e}"
                    )
            end += step
        at += chunk
    print(f"scored {args.score_days} days in {time.perf_counter() - began:.0f} s")
    labels = plan.labels()
    for name in tests:
        result: Evaluation = evaluate(labels, fired[name], grace=2 * step)
        print(f"\n== {name}: {len(fired[name])} alerts, {len(result.false_alerts)} false")
        for o in result.outcomes:
            if o.kind == "slow_degradation" or o.detected:
                ttd = (
                    f"{o.time_to_detect.total_seconds() / 60:.0f} min" if o.time_to_detect else "-"
                )
                print(f"  {o.scenario_id} ({o.kind}): detected={o.detected} ttd={ttd}")
        false_ids = {a.id for a in result.false_alerts}
        for a, line in zip(fired[name], detail[name], strict=True):
            print(("  FALSE " if a.id in false_ids else "  ") + line)


if __name__ == "__main__":
    main()
