"""Pooled expected-volume model against per-series baselines: one report,
``bench/reports/pooled-volume.md`` (+ ``pooled-volume.json``).

    .venv/bin/python bench/pooled_volume.py [--cache var/bench/pooled] [--no-twitter]

Issue 18 item 4: is one gradient-boosted Poisson model of all (commune, service) series
(``detectors/anomaly/pooled.py``) a better expectation than each series' own history, above all
for quiet communes (under one event an hour)? Data (``bench/pooled_data.py``): the simulator's
traffic of a *train* world (seed 1, two weeks) and of a *test* world (seed 2, three weeks, every
commune resized by its own random factor). Expectations of the test world's third week (held
out), each causal:

- ``pooled (other world)``: fitted on the train world only, never on the test world;
- ``pooled (weekly retrain)``: fitted on the test world's first two weeks (the live schedule);
- ``own hour-of-week mean``: each series' mean of the same hour of week over the two weeks
  (floored at ``FLOOR``, else any event against 0 is an infinite deviance);
- ``own level x service shape``: each series' mean hourly count times its service's national
  hour-of-week shape (the form of the former live baseline, ``detectors/anomaly/baseline``);
- ``StreamBank`` (the live engine, ``stream.bank``, ``LIVE`` parameters, Vietnam's calendar) on
  five-minute buckets for a fixed sample of series: its expected value, bucket by bucket.

Measures: mean Poisson deviance per series-hour (all series, quiet ones, busy ones); then, on the
quiet series of the sample at five-minute buckets, a Poisson tail test of the recent observed
count against each model's expectation (windows of 5 min to 12 h, both tails, Bonferroni, one
threshold ``ALPHA``): false alerts per series-day on the clean week, and time to detect of an
injected outage (counts to 0 for 8 h) and surge (3x for 3 h: the same buckets of the two history
weeks added, three draws of the same rate) starting on a working morning. Also a volume-only
public check: NAB's ten Twitter-volume series (real counts), pooled vs own hour-of-week mean.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from pooled_data import World, generate, series  # bench/ is on sys.path as a script
from pooled_report import ALPHA, OUTAGE, QUIET, SURGE, WINDOWS, render
from scipy import special

from detectors.anomaly.pooled import PooledVolume, SeriesMeta, own_levels, time_features
from detectors.anomaly.stream import VIETNAM, Block, Engine
from detectors.anomaly.stream.config import LIVE
from detectors.anomaly.stream.season import Calendar
from soc.localities import catalogue

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "bench" / "reports" / "pooled-volume.md"
TRAIN = World("train", 1, datetime(2026, 11, 1, 17, tzinfo=UTC), 336, False)
TEST = World("test", 2, datetime(2026, 11, 15, 17, tzinfo=UTC), 504, True)
HISTORY = 336
SAMPLE, SAMPLE_SEED = 400, 7
FLOOR = 0.02
FIT_ROWS = 1_500_000
SHORT = (24, 72)
"""Hours of history of the short-history comparison."""


def log(message: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S} {message}", file=sys.stderr, flush=True)


def deviance(y: np.ndarray, mu: np.ndarray) -> float:
    mu = np.maximum(mu, 1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return float(np.mean(2.0 * (term - (y - mu))))


def per_series_baselines(
    history: np.ndarray, start: datetime, metas: list[SeriesMeta]
) -> dict[str, Any]:
    how = time_features(start, history.shape[1])["hour_of_week"]
    weeks = history.shape[1] // 168
    slot_mean = np.zeros((history.shape[0], 168))
    for s in range(168):
        slot_mean[:, s] = history[:, how == s].mean(axis=1)
    level = history.mean(axis=1)
    services = np.array([m.service for m in metas])
    shape = np.zeros_like(slot_mean)
    for name in set(services):
        rows = services == name
        total = slot_mean[rows].sum(axis=0)
        shape[rows] = total / max(total.mean(), 1e-9)
    return {"slot": slot_mean, "level": level, "shape": shape, "weeks": weeks}


def per_series(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Mean Poisson deviance of each series (row) over its hours."""
    mu = np.maximum(mu, 1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / mu), 0.0)
    return np.asarray(np.mean(2.0 * (term - (y - mu)), axis=1))


def baseline_expectations(
    base: dict[str, Any], start: datetime, hours: int
) -> dict[str, np.ndarray]:
    how = time_features(start, hours)["hour_of_week"]
    own = np.maximum(base["slot"][:, how], FLOOR)
    shaped = np.maximum(base["level"][:, None] * base["shape"][:, how], FLOOR)
    return {"own hour-of-week mean": own, "own level x service shape": shaped}


def stream_variants(
    fine: np.ndarray, variants: dict[str, np.ndarray]
) -> tuple[dict[str, Any], float]:
    """The engine over the history buckets once (every series a row of one block), then over
    each variant of the eval week from a copy of that block: expected values (series, eval
    buckets) per variant, and the wall seconds per observation."""
    engine = Engine(LIVE, VIETNAM)
    base = TEST.start.timestamp()
    hist = HISTORY * 12
    out = {name: np.zeros(v.shape) for name, v in variants.items()}
    t0, n = time.perf_counter(), 0
    block = engine.new_block()
    rows = engine.add(block, fine.shape[0])
    for b in range(hist):
        engine.observe(block, rows, base + 300.0 * (b + 1), fine[:, b].astype(float))
    saved = block.to_bytes()
    n += hist * fine.shape[0]
    for name, v in variants.items():
        copy = Block.from_bytes(saved)
        for b in range(v.shape[1]):
            at = base + 300.0 * (hist + b + 1)
            out[name][:, b] = engine.observe(copy, rows, at, v[:, b].astype(float)).expected
        n += v.size
    return {k: np.maximum(v, 0.0) for k, v in out.items()}, (time.perf_counter() - t0) / n


def short_history(
    models: dict[str, PooledVolume],
    test: np.ndarray,
    metas: list[SeriesMeta],
    base: dict[str, Any],
    quiet: np.ndarray,
) -> dict[str, dict[str, dict[str, float]]]:
    """Series with days, not weeks, of history (a new commune, a new service): only the last
    ``SHORT`` hours before the held-out week are known. Both sides update causally through the
    week: the pooled model's own level, and the per-series baseline's level (its counts so far
    over its service's shape so far)."""
    how = time_features(TEST.start, test.shape[1])["hour_of_week"]
    shape = base["shape"][:, how]
    y = test[:, HISTORY:].astype(np.float64)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for hours in SHORT:
        known = test[:, HISTORY - hours :].astype(np.float64)
        sh = shape[:, HISTORY - hours :]
        cy = np.cumsum(known, axis=1)[:, hours - 1 : -1]
        cs = np.cumsum(sh, axis=1)[:, hours - 1 : -1]
        level = np.divide(cy, cs, out=np.zeros_like(cy), where=cs > 0)
        mus = {"own level x service shape": np.maximum(level * sh[:, hours:], FLOOR)}
        start = TEST.start + timedelta(hours=HISTORY - hours)
        for name, model in models.items():
            mus[name] = model.expected(metas, known, start, from_hour=hours)
        out[f"{hours} h"] = {
            k: {"quiet": deviance(y[quiet], mu[quiet]), "busy": deviance(y[~quiet], mu[~quiet])}
            for k, mu in mus.items()
        }
        log(f"short history {hours} h done")
    return out


def tail_p(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Both-tail Poisson probability of the recent counts (each window of ``WINDOWS`` buckets
    ending at each bucket) against their expectation, Bonferroni over windows and tails."""
    cum_o = np.concatenate([np.zeros((observed.shape[0], 1)), np.cumsum(observed, axis=1)], axis=1)
    cum_e = np.concatenate([np.zeros((expected.shape[0], 1)), np.cumsum(expected, axis=1)], axis=1)
    best = np.ones(observed.shape)
    ends = np.arange(1, observed.shape[1] + 1)
    for w in WINDOWS:
        starts = np.maximum(0, ends - w)
        o = cum_o[:, ends] - cum_o[:, starts]
        e = np.maximum(cum_e[:, ends] - cum_e[:, starts], 1e-6)
        hi = np.where(o >= 1, special.gammainc(np.maximum(o, 1e-9), e), 1.0)
        lo = special.gammaincc(o + 1.0, e)
        best = np.minimum(best, np.minimum(hi, lo))
    return np.minimum(1.0, best * 2 * len(WINDOWS))


def episodes(alerts: np.ndarray) -> int:
    starts = alerts & ~np.concatenate([np.zeros((alerts.shape[0], 1), bool), alerts[:, :-1]], 1)
    return int(starts.sum())


def injected(
    clean: np.ndarray, history: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Outage and surge copies of the eval week (five-minute counts), with their start buckets.
    Starts on Tuesday-Thursday between 08:00 and 10:00 local (the eval week starts Monday 00:00)."""
    n = len(clean)  # an int (shape is untyped), so rng.integers(..., n) is typed as an array
    starts = (rng.integers(1, 4, n) * 24 + rng.integers(8, 10, n)) * 12 + rng.integers(0, 12, n)
    outage, surge = clean.copy(), clean.copy()
    extra = history[:, :2016] + history[:, 2016:4032]
    for i, s in enumerate(starts):
        outage[i, s : s + OUTAGE] = 0
        surge[i, s : s + SURGE] += extra[i, s : s + SURGE]
    return {"starts": starts, "outage": outage, "surge": surge}


def detect(
    observed: np.ndarray, expected: np.ndarray, starts: np.ndarray, length: int
) -> dict[str, float | None]:
    alerts = tail_p(observed, expected) < ALPHA
    minutes = []
    for i, s in enumerate(starts):
        hit = np.flatnonzero(alerts[i, s : s + length])
        if hit.size:
            minutes.append(5 * (int(hit[0]) + 1))
    return {
        "detected": len(minutes) / len(starts),
        "median_minutes": float(np.median(minutes)) if minutes else None,
        "p90_minutes": float(np.percentile(minutes, 90)) if minutes else None,
    }


def twitter(nab: Path) -> dict[str, Any] | None:
    """NAB's Twitter-volume series (real tweet counts per 5 minutes), hourly: pooled model over
    the ten fitted on each one's first 60 % against each one's own hour-of-week mean."""
    files = sorted((nab / "data" / "realTweets").glob("Twitter_volume_*.csv"))
    if not files:
        return None
    import csv

    rows = []
    for f in files:
        with f.open() as fh:
            rows.append([(r["timestamp"], float(r["value"])) for r in csv.DictReader(fh)])
    first = min(datetime.fromisoformat(r[0][0]).replace(tzinfo=UTC) for r in rows)
    start = first.replace(minute=0, second=0)
    last = max(datetime.fromisoformat(r[-1][0]).replace(tzinfo=UTC) for r in rows)
    hours = int((last - start).total_seconds() // 3600) + 1
    counts = np.full((len(rows), hours), np.nan)
    for i, r in enumerate(rows):
        for ts, v in r:
            h = int(
                (datetime.fromisoformat(ts).replace(tzinfo=UTC) - start).total_seconds() // 3600
            )
            counts[i, h] = (0.0 if np.isnan(counts[i, h]) else counts[i, h]) + v
    seen = ~np.isnan(counts).any(axis=0)
    lo, hi = np.flatnonzero(seen)[[0, -1]]
    counts = np.nan_to_num(counts[:, lo : hi + 1])  # an hour missing inside: counted as 0
    start += timedelta(hours=int(lo))
    cut = int(counts.shape[1] * 0.6) // 168 * 168 or 168
    plain = Calendar()
    metas = [SeriesMeta("tweets", "xa", False, 1)] * len(rows)
    model = PooledVolume.fit(counts[:, :cut], start, metas, calendar=plain)
    pooled = model.expected(metas, counts, start, from_hour=cut, calendar=plain)
    base = per_series_baselines(counts[:, :cut], start, metas)
    own = baseline_expectations(base, start + cut * timedelta(hours=1), counts.shape[1] - cut)
    y = counts[:, cut:]
    out: dict[str, Any] = {"series": len(rows), "train_hours": cut, "test_hours": int(y.shape[1])}
    out["pooled"] = deviance(y, pooled)
    for name, mu in own.items():
        out[name] = deviance(y, mu)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=ROOT / "var" / "bench" / "pooled")
    parser.add_argument("--nab", type=Path, default=ROOT.parent / "shared" / "nab")
    parser.add_argument("--no-twitter", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="render the last JSON only")
    args = parser.parse_args()
    if args.reuse:
        REPORT.write_text(render(json.loads(REPORT.with_suffix(".json").read_text())))
        print(REPORT.read_text())
        return
    began = datetime.now(UTC)
    load_before = os.getloadavg()
    cat = catalogue()
    _, metas = series(cat)
    sample = np.sort(np.random.default_rng(SAMPLE_SEED).choice(len(metas), SAMPLE, replace=False))
    t0 = time.perf_counter()
    train, _, train_gen = generate(cat, TRAIN, sample, args.cache)
    test, fine, test_gen = generate(cat, TEST, sample, args.cache)
    gen_s = time.perf_counter() - t0
    # A service none of whose lines names a commune (the national portal's access lines are
    # province-level) has no commune series: 3,321 rows of zeros would flatter any model that
    # predicts 0 against the baselines' floor.
    services = np.array([m.service for m in metas])
    kept = {s for s in set(services) if test[services == s, :HISTORY].sum() > 0}
    keep = np.isin(services, sorted(kept))
    new_index = np.cumsum(keep) - 1
    fine, sample = fine[keep[sample]], new_index[sample[keep[sample]]]
    train, test = train[keep], test[keep]
    metas = [m for m, k in zip(metas, keep, strict=True) if k]
    dropped = sorted(set(services) - kept)
    history, y = test[:, :HISTORY], test[:, HISTORY:].astype(np.float64)
    eval_start = TEST.start + timedelta(hours=HISTORY)
    quiet = history.mean(axis=1) < QUIET

    scored = np.arange(len(metas))  # every series (a subset would do on a busier box)
    log(f"data ready ({gen_s:.0f} s)")
    fits: dict[str, float] = {}
    t = time.perf_counter()
    other = PooledVolume.fit(train, TRAIN.start, metas, max_rows=FIT_ROWS)
    fits["pooled (other world)"] = time.perf_counter() - t
    t = time.perf_counter()
    weekly = PooledVolume.fit(history, TEST.start, metas, max_rows=FIT_ROWS)
    fits["pooled (weekly retrain)"] = time.perf_counter() - t
    log(f"fitted: {fits}")
    scored_metas = [metas[i] for i in scored]
    models: dict[str, np.ndarray] = {}
    t = time.perf_counter()
    models["pooled (other world)"] = other.expected(
        scored_metas, test[scored], TEST.start, from_hour=HISTORY
    )
    predict_s = (time.perf_counter() - t) / (test.shape[1] - HISTORY) / len(scored)
    models["pooled (weekly retrain)"] = weekly.expected(
        scored_metas, test[scored], TEST.start, from_hour=HISTORY
    )
    base = per_series_baselines(history, TEST.start, metas)
    for k, v in baseline_expectations(base, eval_start, y.shape[1]).items():
        models[k] = v[scored]
    log("held-out week predicted")
    y, quiet_scored = y[scored], quiet[scored]

    paired = {}
    for name in ("pooled (other world)", "pooled (weekly retrain)"):
        diff = per_series(y, models[name]) - per_series(y, models["own level x service shape"])
        d = diff[quiet_scored]
        paired[name] = {"mean": float(d.mean()), "se": float(d.std(ddof=1) / np.sqrt(d.size))}
    dev = {
        name: {
            "all": deviance(y, mu),
            "quiet": deviance(y[quiet_scored], mu[quiet_scored]),
            "busy": deviance(y[~quiet_scored], mu[~quiet_scored]),
        }
        for name, mu in models.items()
    }

    short = short_history(
        {"pooled (other world)": other, "pooled (weekly retrain)": weekly},
        test,
        metas,
        base,
        quiet,
    )

    # The sample at five-minute buckets: the engine's expectation, and detection.
    sq = sample[quiet[sample]]
    fine_q = fine[quiet[sample]]
    fine_hist, fine_eval = fine_q[:, : HISTORY * 12], fine_q[:, HISTORY * 12 :].astype(float)
    inj = injected(fine_eval, fine_hist.astype(float), np.random.default_rng(11))
    variants = {"clean": fine_eval, "outage": inj["outage"], "surge": inj["surge"]}
    log(f"engine over {len(sq)} quiet sample series")
    stream, per_obs = stream_variants(fine_q, variants)
    log("engine done")
    sample_metas = [metas[i] for i in sq]
    per_bucket: dict[str, dict[str, np.ndarray]] = {}
    for name, v in variants.items():
        hourly = np.concatenate([history[sq], v.reshape(len(sq), -1, 12).sum(axis=2)], axis=1)
        exp = {
            "pooled (other world)": other.expected(
                sample_metas, hourly, TEST.start, from_hour=HISTORY
            ),
            "pooled (weekly retrain)": weekly.expected(
                sample_metas, hourly, TEST.start, from_hour=HISTORY
            ),
        }
        exp.update(
            {k: models[k][sq] for k in ("own hour-of-week mean", "own level x service shape")}
        )
        per_bucket[name] = {k: np.repeat(m, 12, axis=1) / 12.0 for k, m in exp.items()}
        per_bucket[name]["StreamBank (live engine)"] = stream[name]
    y_hour = fine_eval.reshape(len(sq), -1, 12).sum(axis=2)
    dev_sample = {
        k: deviance(y_hour, m.reshape(len(sq), -1, 12).sum(axis=2))
        for k, m in per_bucket["clean"].items()
    }
    days = fine_eval.shape[1] / 288
    detection = {}
    for k in per_bucket["clean"]:
        false = episodes(tail_p(fine_eval, per_bucket["clean"][k]) < ALPHA)
        detection[k] = {
            "false_per_series_day": false / (len(sq) * days),
            "outage": detect(inj["outage"], per_bucket["outage"][k], inj["starts"], OUTAGE),
            "surge": detect(inj["surge"], per_bucket["surge"][k], inj["starts"], SURGE),
        }

    # Speed: one live bucket's expectations for every series against the engine's own cost.
    static = other.static(metas)
    level = own_levels(test)[:, HISTORY]
    times = []
    for _ in range(10):
        t = time.perf_counter()
        other.expected_now(static, eval_start, level)
        times.append(time.perf_counter() - t)
    bucket_s = float(np.median(times))
    tw = None if args.no_twitter else twitter(args.nab)
    result = {
        "began": began.isoformat(timespec="seconds"),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "series": len(metas),
        "dropped_services": dropped,
        "quiet_series": int(quiet.sum()),
        "sample_quiet": len(sq),
        "read_s": gen_s,
        "generated_s": {"train": train_gen, "test": test_gen},
        "paired_quiet": paired,
        "short_history": short,
        "fit_s": fits,
        "predict_bucket_all_s": bucket_s,
        "engine_per_obs_s": per_obs,
        "deviance": dev,
        "deviance_sample": dev_sample,
        "detection": detection,
        "twitter": tw,
        "scored_series": len(scored),
        "predict_row_s": predict_s,
    }
    (REPORT.with_suffix(".json")).write_text(json.dumps(result, indent=1, default=str))
    REPORT.write_text(render(result))
    print(REPORT.read_text())


if __name__ == "__main__":
    main()
