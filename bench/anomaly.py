"""Benchmark and quality of the anomaly model on simulated history with injected scenarios.

One command, one report (``bench/reports/anomaly.md``)::

    .venv/bin/python bench/anomaly.py                       # managed node or SOC_ES_URL
    .venv/bin/python bench/anomaly.py --keep                # keep the indices to re-score
    .venv/bin/python bench/anomaly.py --prefix P --skip-backfill   # re-use kept indices

It backfills ``--train-days`` of normal traffic for all 34 provinces and 3,321 communes, then
``--score-days`` with the scenarios of ``bench/anomaly-scenarios.yaml`` (the simulator's ground
truth), trains on the first part (timed), times the scoring of one busy bucket for every
locality and service including the aggregations, scores every bucket of the scored days, and
matches the alerts against the ground truth with ``soc.simulate.evaluate``. By default the
scored days are a weekend and the two weekdays after it (Saturday to Tuesday), reported
separately: weekdays are busier, so they hold more room for false alerts.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anomaly_iforest  # bench/ is on sys.path when run as a script
import anomaly_report
from elasticsearch import ApiError, Elasticsearch

from detectors.anomaly import flows, live, probes, syncjob, syncstop, unsynced
from detectors.anomaly import windows as step_windows
from detectors.anomaly.baseline.model import Model
from detectors.anomaly.features import Level, extract
from detectors.anomaly.silence import find
from detectors.anomaly.unsynced import DOSSIER_ACTIONS, OSS_SERVICE
from detectors.base import Window, aligned_windows, iso
from soc.alerts.models import Alert
from soc.config import Settings, load_settings
from soc.es.client import ensure_elasticsearch
from soc.es.indices import Indices
from soc.es.templates import setup
from soc.localities import catalogue
from soc.simulate import scenarios
from soc.simulate.evaluate import Evaluation, SeenAlert, evaluate, fetch_alerts
from soc.simulate.flows import backfill
from soc.simulate.models import Label
from soc.simulate.service import Plan, local_midnight

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "bench" / "anomaly-scenarios.yaml"
#: Alerts that come from no feature row (silence, probes, dossier pairing): out of a forest's reach.
NO_ROW_RULES = {
    "anomaly-outage",
    "anomaly-collector-silence",
    "anomaly-endpoint-down",
    "anomaly-unsynced-dossiers",
    "anomaly-sync-failing",
    "anomaly-sync-job-stopped",
}
VN_OFFSET = timedelta(hours=7)


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--train-days", type=int, default=7)
    parser.add_argument("--score-days", type=int, default=4)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument(
        "--end", default="2026-11-25T00:00:00+07:00", help="End of scored days (a Wednesday)."
    )
    parser.add_argument("--prefix", default=None, help="Index prefix (default: a fresh one).")
    parser.add_argument("--skip-backfill", action="store_true")
    parser.add_argument(
        "--backfill-note", default="", help="With --skip-backfill: how the kept events were made."
    )
    parser.add_argument("--keep", action="store_true", help="Keep the benchmark's indices.")
    parser.add_argument(
        "--backfill-only", action="store_true", help="Backfill (and keep) the indices, then stop."
    )
    parser.add_argument(
        "--stream",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Also the live streaming detector's 5-minute volumes and failure counts "
        "(SOC_ANOMALY_STREAM, on by default; --no-stream: only the 15-minute model, which "
        "judges volumes, failure ratios, latency, silences, probes and the sync checks).",
    )
    parser.add_argument(
        "--perf-only", action="store_true", help="Only time training and one bucket (kept data)."
    )
    return parser.parse_args()


def _timed_bucket(
    es: Elasticsearch,
    indices: Indices,
    model: Model,
    settings: Settings,
    start: datetime,
    end: datetime,
) -> dict[str, float]:
    parts: dict[str, float] = {}
    # One step as the job scores it: the step-long rows of the long window ending at the step
    # (one read per level), then the step and the long window judged.
    step = end - start
    long = step_windows.long_window(settings, step)
    began = time.perf_counter()
    rows = list(extract(es, indices, end - long, end, step, Level.COMMUNE))
    parts["features_commune"] = time.perf_counter() - began
    t = time.perf_counter()
    rows += list(extract(es, indices, end - long, end, step, Level.PROVINCE))
    parts["features_province"] = time.perf_counter() - t
    t = time.perf_counter()
    step_windows.judge_step(model, rows, end, step, long, settings)
    parts["judge"] = time.perf_counter() - t
    t = time.perf_counter()
    lookback = timedelta(minutes=settings.anomaly_silence_lookback_minutes)
    find(es, indices, model, start, end, lookback=lookback, alpha=settings.anomaly_alpha)
    parts["silence"] = time.perf_counter() - t
    t = time.perf_counter()
    probes.find(
        es, indices, model.probes, model.probe_share, start, end, alpha=settings.anomaly_alpha
    )
    parts["probes"] = time.perf_counter() - t
    t = time.perf_counter()
    share = unsynced.expected_share(model.sync_dossiers, model.sync_unsynced)
    unsynced.find(es, indices, share, start, end, alpha=settings.anomaly_alpha)
    parts["unsynced"] = time.perf_counter() - t
    t = time.perf_counter()
    syncjob.find_failing(es, indices, model, start, end, alpha=settings.anomaly_alpha)
    syncstop.find_stopped(es, indices, model, start, end, alpha=settings.anomaly_alpha)
    parts["syncjob"] = time.perf_counter() - t
    parts["total"] = time.perf_counter() - began
    parts["rows"] = len(rows)
    return parts


def _evaluate_retrying(
    es: Elasticsearch, indices: Indices, w: Window, model: Model, settings: Settings
) -> list[Alert]:
    """One bucket, tried again after a 429 (the shared node's memory breaker), as the scheduled
    job does at its next tick: the bucket's alerts have deterministic ids, so a retry doubles
    nothing."""
    for attempt in range(5):
        try:
            return flows.evaluate(es, indices, w.start, w.end, model=model, settings=settings)
        except ApiError as exc:
            if exc.meta.status != 429 or attempt == 4:
                raise
            print(f"429 from Elasticsearch on {w.start:%m-%d %H:%M}; retrying", flush=True)
            time.sleep(10)
    raise AssertionError("unreachable")


def _stream(
    es: Elasticsearch, indices: Indices, settings: Settings, start: datetime, end: datetime
) -> Counter[str]:
    """The live streaming detector as the scheduler runs it: warmed up on the training days
    (no alert), then ticked through the scored days (each tick catches up what closed since)."""
    lateness = timedelta(seconds=settings.anomaly_stream_lateness_seconds)
    detector = live.LiveDetector(es, indices, settings)
    began, ticks = time.perf_counter(), 0
    while not ticks or detector.warming:  # a first start warms a few provinces a tick
        detector.tick(now=start + lateness)
        ticks += 1
    took = time.perf_counter() - began
    print(f"stream banks warmed up in {took:.0f} s ({ticks} ticks)", flush=True)
    found: Counter[str] = Counter()
    at = start
    while at < end:
        at = min(end, at + timedelta(hours=3))
        for alert in detector.tick(now=at + lateness):
            found[alert.rule.id] += 1
        print(f"stream scored until {at:%m-%d %H:%M}: {sum(found.values())} alerts", flush=True)
    return found


def _volumes(es: Elasticsearch, indices: Indices, start: datetime, end: datetime) -> list[str]:
    """Events per local day, and how many are probe results and sync pushes."""
    answer = es.search(
        index=indices.events,
        size=0,
        query={"range": {"@timestamp": {"gte": start.isoformat(), "lt": end.isoformat()}}},
        aggs={
            "day": {
                "date_histogram": {
                    "field": "@timestamp",
                    "calendar_interval": "day",
                    "time_zone": "+07:00",
                },
                "aggs": {
                    "probe": {"filter": {"term": {"event.dataset": "probe.http"}}},
                    "sync": {"filter": {"term": {"event.action": "dossier-sync"}}},
                    "runs": {"filter": {"term": {"event.action": "sync-run"}}},
                },
            }
        },
    )
    rows = [
        "",
        "Events per local day (Asia/Ho_Chi_Minh), with the health-probe results, the sync pushes "
        "and the sync jobs' run records:",
        "",
        "| local day | events | probe results | share | portal-sync pushes | sync-run records |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for b in answer["aggregations"]["day"]["buckets"]:
        day = datetime.fromisoformat(b["key_as_string"][:10])
        n, probe = b["doc_count"], b["probe"]["doc_count"]
        rows.append(
            f"| {day:%a %m-%d} | {n:,} | {probe:,} | {probe / max(n, 1):.0%} "
            f"| {b['sync']['doc_count']:,} | {b['runs']['doc_count']:,} |"
        )
    return rows


def _busy_bucket(score_start: datetime, days: int) -> datetime:
    """10:00 in Vietnam (the day's peak) of the first scored weekday, else of the first day."""
    for i in range(days):
        day = score_start + timedelta(days=i)
        if (day + VN_OFFSET).weekday() < 5:
            return day + timedelta(hours=10)
    return score_start + timedelta(hours=10)


def _periods(score_start: datetime, days: int) -> dict[str, list[tuple[datetime, datetime]]]:
    """The scored days split into weekend and weekdays (local days)."""
    out: dict[str, list[tuple[datetime, datetime]]] = {"weekend": [], "weekdays": []}
    for i in range(days):
        day = score_start + timedelta(days=i)
        name = "weekend" if (day + VN_OFFSET).weekday() >= 5 else "weekdays"
        out[name].append((day, day + timedelta(days=1)))
    return {k: v for k, v in out.items() if v}


def first_effects(
    es: Elasticsearch, indices: Indices, labels: list[Label]
) -> dict[str, tuple[datetime, datetime]]:
    """Per ``sync_stopped`` scenario: the first dossier change its communes made after its
    start (the first dossier it could not push), and its start."""
    wards: dict[str, list[Label]] = {}
    for label in labels:
        if label.kind == "sync_stopped" and label.ward_code:
            wards.setdefault(label.scenario_id, []).append(label)
    found: dict[str, tuple[datetime, datetime]] = {}
    for scenario, group in wards.items():
        start, end = min(x.start for x in group), max(x.end for x in group)
        answer = es.search(
            index=indices.events, size=0, ignore_unavailable=True,
            query={"bool": {"filter": [
                {"term": {"service.name": OSS_SERVICE}},
                {"terms": {"event.action": list(DOSSIER_ACTIONS)}},
                {"term": {"event.outcome": "success"}},
                {"terms": {"locality.ward.code": [x.ward_code for x in group]}},
                {"range": {"@timestamp": {"gte": iso(start), "lt": iso(end)}}},
            ]}},
            aggs={"first": {"min": {"field": "@timestamp"}}},
        )  # fmt: skip
        value = answer["aggregations"]["first"]["value"]
        if value is not None:
            found[scenario] = (datetime.fromtimestamp(value / 1000, UTC), start)
    return found


def _split(
    labels: list[Label],
    alerts: list[SeenAlert],
    spans: list[tuple[datetime, datetime]],
    grace: timedelta,
) -> Evaluation:
    """Evaluation of one period: the scenarios starting in it, the alerts whose window starts
    in it."""

    def inside(when: datetime) -> bool:
        return any(lo <= when < hi for lo, hi in spans)

    return evaluate(
        [x for x in labels if inside(x.start)],
        [a for a in alerts if inside(a.start)],
        grace=grace,
    )


def main() -> None:
    args = _args()
    score_end = datetime.fromisoformat(args.end).astimezone(UTC)
    score_start = local_midnight(score_end - timedelta(days=args.score_days))
    train_start = score_start - timedelta(days=args.train_days)
    found = scenarios.load(SCENARIOS, catalogue(), score_start)
    plan = Plan(seed=1, scale=args.scale, scenarios=tuple(found), probes=True)
    prefix = args.prefix or f"anombench-{datetime.now(UTC):%Y%m%d%H%M%S}"
    var_dir = Path(tempfile.mkdtemp(prefix="anombench-"))
    settings = load_settings(
        index_prefix=prefix,
        index_replicas=0,
        var_dir=var_dir,
        anomaly_stream=args.stream,
        anomaly_stream_warmup_days=float(args.train_days),
    )
    es, _ = ensure_elasticsearch(settings)
    indices = Indices(prefix)
    if args.skip_backfill:
        # Re-scoring kept events: the alerts and checkpoint of an earlier run must not count.
        es.options(ignore_status=404).indices.delete(index=f"{indices.alerts},{indices.state}")
    setup(es, indices, replicas=0)
    lines: list[str] = [f"- backfill: {args.backfill_note}"] if args.backfill_note else []
    if not args.skip_backfill:
        filled = backfill(es, indices, plan, train_start, score_end)
        print(f"backfilled {filled.created} events in {filled.seconds:.0f} s", flush=True)
        lines.append(
            f"- backfill: {filled.created:,} events over {args.train_days + args.score_days}"
            f" days in {filled.seconds:.0f} s"
        )
    events = es.count(index=indices.events)["count"]
    if args.backfill_only:
        print(f"kept {events:,} events under {prefix}")
        return
    args.volumes = _volumes(es, indices, train_start, score_end)

    began = time.perf_counter()
    model, _path = flows.train(es, indices, settings, score_start, days=args.train_days)
    train_s = time.perf_counter() - began
    print(f"trained in {train_s:.1f} s: {len(model.baselines)} series", flush=True)

    busy = _busy_bucket(score_start, args.score_days)
    bucket = flows.bucket_of(settings)
    runs = [_timed_bucket(es, indices, model, settings, busy, busy + bucket) for _ in range(5)]
    score_s = statistics.median(r["total"] for r in runs)
    print(f"one bucket scored in {score_s:.2f} s (median of 5)", flush=True)
    if args.perf_only:
        anomaly_report.write_perf(args, events, model, train_s, runs, score_s)
        return

    windows = list(aligned_windows(score_start, score_end, bucket))
    began = time.perf_counter()
    per_rule: Counter[str] = Counter()
    for i, w in enumerate(windows):
        for alert in _evaluate_retrying(es, indices, w, model, settings):
            per_rule[alert.rule.id] += 1
        if i % 16 == 0:
            print(
                f"scored {i + 1}/{len(windows)} buckets, {sum(per_rule.values())} alerts",
                flush=True,
            )
    if args.stream:
        per_rule += _stream(es, indices, settings, score_start, score_end)
    scoring_s = time.perf_counter() - began

    alerts = [
        a for a in fetch_alerts(es, indices, score_start, score_end) if a.detector == "anomaly"
    ]
    result = evaluate(plan.labels(), alerts, grace=2 * bucket)
    effects = first_effects(es, indices, plan.labels())
    periods = {
        name: (len(spans), _split(plan.labels(), alerts, spans, 2 * bucket))
        for name, spans in _periods(score_start, args.score_days).items()
    }
    began = time.perf_counter()
    live_rows = sum(v for k, v in per_rule.items() if k not in NO_ROW_RULES)
    forest = anomaly_iforest.compare(
        es, indices, model, windows, plan.labels(), train_start, score_start, 2 * bucket, live_rows
    )
    forest["seconds"] = time.perf_counter() - began
    print(f"isolation forest compared in {forest['seconds']:.0f} s", flush=True)
    anomaly_report.write(
        args,
        lines,
        events,
        model,
        train_s,
        runs,
        score_s,
        windows,
        scoring_s,
        per_rule,
        result,
        score_start,
        score_end,
        forest,
        periods,
        bucket,
        effects,
    )
    if not args.keep:
        for name in es.indices.get(index=f"{prefix}-*", expand_wildcards="all"):
            es.indices.delete(index=name)
    print(f"report: {anomaly_report.REPORT}")


if __name__ == "__main__":
    main()
