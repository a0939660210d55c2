"""The 15-minute model's dispersion before and after issue 18's clump sizes, over kept
scenario-bench events (read only): the dispersion over keys, the cost of counting clients, and the
silences found over the scored days.

    .venv/bin/python bench/anomaly_dispersion.py --prefix qbench-1204 [--train-days 7]

Reads the training days before the scored days exactly as ``bench/anomaly.py`` (hourly counts
with their clients and per-key totals) and fits the baseline twice on the same data: the Pearson
dispersion alone (as before) and with the clump sizes (:func:`detectors.anomaly.baseline.model.
fit`). Prints the dispersion's quantiles over keys, per service and level; times the hourly pass
with and without the client counts (``--rounds`` interleaved rounds: a ratio measured in the same
run); then runs the silence test (:func:`detectors.anomaly.silence.find`) over every 15-minute
bucket of the scored days with both models and matches each silent key to the scenarios of
``bench/anomaly-scenarios.yaml`` (same province, same commune when both name one, from 2 min
before the scenario's start to 30 min after its end). Writes nothing to Elasticsearch; the report
(``--report``) is Markdown, newest run first.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from elasticsearch import Elasticsearch

from detectors.anomaly import flows, silence
from detectors.anomaly.baseline.model import Model, fit
from detectors.anomaly.features import ALL_SERVICES, Clumps, Level, hourly_counts
from soc.config import load_settings
from soc.es.client import ensure_elasticsearch
from soc.es.indices import Indices
from soc.localities import catalogue
from soc.simulate import scenarios
from soc.simulate.service import local_midnight

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "bench" / "anomaly-scenarios.yaml"
BUCKET = timedelta(minutes=15)
SERVICES = ("vneid", "otp-gateway", ALL_SERVICES, "web-portal", "one-stop-shop")


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--prefix", required=True, help="Index prefix of kept bench events.")
    parser.add_argument("--train-days", type=int, default=7)
    parser.add_argument("--score-days", type=int, default=4)
    parser.add_argument("--end", default="2026-11-25T00:00:00+07:00", help="End of scored days.")
    parser.add_argument("--rounds", type=int, default=2, help="Timed rounds of the hourly pass.")
    parser.add_argument("--no-silences", action="store_true", help="Skip the silence pass.")
    parser.add_argument("--report", type=Path, default=None, help="Markdown report to prepend.")
    return parser.parse_args()


def _hourly_pass(
    es: Elasticsearch, indices: Indices, start: datetime, end: datetime, clumps: Clumps | None
) -> float:
    began = time.perf_counter()
    day = start
    while day < end:
        stop = min(end, day + timedelta(days=1))
        for level in Level:
            for _ in hourly_counts(es, indices, day, stop, level, clumps=clumps):
                pass
        day = stop
    return time.perf_counter() - began


def _quantiles(values: list[float]) -> str:
    v = sorted(values)
    return " / ".join(f"{v[int(p * (len(v) - 1))]:.2f}" for p in (0.1, 0.25, 0.5, 0.75, 0.9, 0.99))


def _distribution(before: Model, after: Model) -> list[str]:
    lines = [
        "| keys | model | at 1.0 | p10 / p25 / p50 / p75 / p90 / p99 |",
        "| --- | --- | ---: | --- |",
    ]
    groups: list[tuple[str, str | None, Level | None]] = [("all keys", None, None)]
    groups += [(f"{s} {lv.value}", s, lv) for s in SERVICES for lv in Level]
    for name, service, level in groups:
        for label, model in (("before", before), ("after", after)):
            d = [
                b.dispersion
                for k, b in model.baselines.items()
                if (service is None or k.service == service) and (level is None or k.level is level)
            ]
            if d:
                ones = sum(x == 1.0 for x in d)
                lines.append(f"| {name} ({len(d):,}) | {label} | {ones:,} | {_quantiles(d)} |")
    return lines


def _silences(
    es: Elasticsearch,
    indices: Indices,
    models: dict[str, Model],
    start: datetime,
    end: datetime,
    lookback: timedelta,
    alpha: float,
) -> dict[str, list[tuple[datetime, str, float, float]]]:
    """``(bucket, key, p, dispersion)`` of every outage each model finds in ``[start, end)``."""
    # Both models judge the same bucket: one read of the last events and of the heard collectors.
    latest, heard = silence._latest, silence.heard_collectors
    silence._latest = functools.lru_cache(maxsize=2)(latest)
    silence.heard_collectors = functools.lru_cache(maxsize=2)(heard)
    found: dict[str, list[tuple[datetime, str, float, float]]] = {name: [] for name in models}
    try:
        at = start
        while at < end:
            for name, model in models.items():
                outages, _ = silence.find(
                    es, indices, model, at, at + BUCKET, lookback=lookback, alpha=alpha
                )
                for o in outages:
                    d = model.baselines[o.key].dispersion
                    found[name].append((at, o.key.text(), o.p_value, d))
            at += BUCKET
    finally:
        silence._latest, silence.heard_collectors = latest, heard
    return found


def _explained(found: list[scenarios.Scenario], key: str, at: datetime) -> str | None:
    _level, province, ward, _service = key.split("/", 3)
    for s in found:
        if s.where.province.code != province:
            continue
        if not s.start - timedelta(minutes=2) <= at <= s.end + timedelta(minutes=30):
            continue
        if s.where.ward is not None and ward != "-" and s.where.ward.code != ward:
            continue
        return s.id
    return None


def _silence_lines(
    found: dict[str, list[tuple[datetime, str, float, float]]], truth: list[scenarios.Scenario]
) -> list[str]:
    lines = [
        "| model | silent keys | of them no scenario | scenario found (first bucket, key) |",
        "| --- | ---: | ---: | --- |",
    ]
    detail: list[str] = []
    for name, rows in found.items():
        first: dict[str, tuple[datetime, float, float, int]] = {}
        for at, key, p, d in rows:
            seen = first.get(key)
            first[key] = (seen[0], seen[1], seen[2], seen[3] + 1) if seen else (at, p, d, 1)
        false = [k for k, (at, *_r) in first.items() if _explained(truth, k, at) is None]
        by_scenario: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
        for k, (at, *_r) in first.items():
            sid = _explained(truth, k, at)
            if sid is not None:
                by_scenario[sid].append((at, k))
        hits = "; ".join(
            f"{sid} {min(v)[0]:%a %H:%M}Z ({len(v)} keys)" for sid, v in sorted(by_scenario.items())
        )
        lines.append(f"| {name} | {len(first)} | {len(false)} | {hits} |")
        for k in sorted(false, key=lambda k: first[k][0]):
            at, p, d, n = first[k]
            detail.append(
                f"- {name}: {k} first {at:%a %H:%M}Z, {n} buckets, p {p:.0e}, disp {d:.2f}"
            )
    return lines + [""] + (detail or ["- no silent key outside a scenario"])


def main() -> None:
    args = _args()
    score_end = datetime.fromisoformat(args.end).astimezone(UTC)
    score_start = local_midnight(score_end - timedelta(days=args.score_days))
    train_start = score_start - timedelta(days=args.train_days)
    settings = load_settings(index_prefix=args.prefix)
    es, _ = ensure_elasticsearch(settings)
    indices = Indices(args.prefix)
    ran = datetime.now(UTC)
    load = os.getloadavg()
    times: dict[str, list[float]] = {"counts only": [], "with clients": []}
    for _ in range(args.rounds):
        times["counts only"].append(_hourly_pass(es, indices, train_start, score_start, None))
        times["with clients"].append(_hourly_pass(es, indices, train_start, score_start, {}))
    ratio = statistics.median(times["with clients"]) / statistics.median(times["counts only"])
    print(f"hourly pass: {times}, ratio {ratio:.2f}", flush=True)
    hourly, rows, clumps = flows.training_data(es, indices, train_start, score_start)
    before = fit(hourly, rows, train_start, score_start)
    after = fit(hourly, rows, train_start, score_start, clumps)
    table = _distribution(before, after)
    print("\n".join(table), flush=True)
    lines = [
        f"## Run {ran:%Y-%m-%d %H:%M} UTC",
        "",
        f"`.venv/bin/python bench/anomaly_dispersion.py --prefix {args.prefix} --train-days "
        f"{args.train_days}`: training {train_start:%Y-%m-%d %H:%M} to "
        f"{score_start:%Y-%m-%d %H:%M} UTC, load average at start "
        f"{load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f} (2 cores, shared).",
        "",
        f"Hourly pass of training ({args.rounds} interleaved rounds, s): counts only "
        f"{', '.join(f'{t:.1f}' for t in times['counts only'])}; with client counts "
        f"{', '.join(f'{t:.1f}' for t in times['with clients'])}: **{ratio:.2f}x** (medians).",
        "",
        "Dispersion over keys, before (Pearson alone, floored at 1) and after (with clump sizes):",
        "",
        *table,
    ]
    if not args.no_silences:
        truth = scenarios.load(SCENARIOS, catalogue(), score_start)
        began = time.perf_counter()
        found = _silences(
            es,
            indices,
            {"before": before, "after": after},
            score_start,
            score_start + timedelta(days=args.score_days),
            timedelta(minutes=settings.anomaly_silence_lookback_minutes),
            settings.anomaly_alpha,
        )
        table = _silence_lines(found, truth)
        print("\n".join(table), flush=True)
        lines += [
            "",
            f"Silence test over every 15-minute bucket of the {args.score_days} scored days "
            f"(alpha {settings.anomaly_alpha:g}, look-back "
            f"{settings.anomaly_silence_lookback_minutes} min; "
            f"{time.perf_counter() - began:.0f} s for both models):",
            "",
            *table,
        ]
    if args.report:
        old = args.report.read_text(encoding="utf-8") if args.report.exists() else ""
        head, _, rest = old.partition("\n## ")
        title = head if old.startswith("# ") else "# Anomaly dispersion: clump sizes\n"
        body = ("\n## " + rest) if rest else ""
        args.report.write_text(
            title.rstrip() + "\n\n" + "\n".join(lines) + "\n" + body, encoding="utf-8"
        )
        print(f"report: {args.report}")


if __name__ == "__main__":
    main()
