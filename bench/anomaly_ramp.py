"""How early a latency ramp can be told apart from its key's learnt latency (issue 18), over kept
scenario-bench events (read only): for each ``slow_degradation`` scenario of
``bench/anomaly-scenarios.yaml``, the key's training quantiles, when the simulator's ramp
(``soc/simulate/effects.py``, ``_slow``: latency x ``1 + (max_factor - 1) x progress``) moves the
median request past the usual p75/p90/p95/p99, and what the requests actually there allow at
``anomaly_alpha``: at each 5-minute step, over the step and the 15 minutes ending at it, the best
binomial tail of any rung's count against the training share (an oracle: no minimum effect, no
Bonferroni) and Fisher's combination of every request's own training tail probability (a
continuous rank test). The first step either passes alpha is the earliest detection the traffic
allows, whatever the test.

    .venv/bin/python bench/anomaly_ramp.py --prefix qbench-1204
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from elasticsearch import Elasticsearch
from elasticsearch.helpers import scan
from scipy import stats

from detectors.anomaly.features import LATENCY_RUNGS_MS
from soc.config import load_settings
from soc.es.client import ensure_elasticsearch
from soc.localities import catalogue
from soc.simulate import scenarios
from soc.simulate.scenarios import Scenario
from soc.simulate.service import local_midnight

SCENARIOS = Path(__file__).resolve().parent / "anomaly-scenarios.yaml"
STEP = timedelta(minutes=5)
WINDOWS = (timedelta(minutes=5), timedelta(minutes=15))


def latencies(
    es: Elasticsearch, prefix: str, scn: Scenario, start: datetime, end: datetime
) -> list[tuple[datetime, float]]:
    """``(time, ms)`` of the scenario key's timed traffic events in ``[start, end)``."""
    assert scn.service is not None
    query = {"bool": {
        "filter": [{"range": {"@timestamp": {"gte": start.isoformat(), "lt": end.isoformat()}}},
                   {"term": {"locality.province.code": scn.where.province.code}},
                   {"term": {"service.name": scn.service.value}},
                   {"exists": {"field": "event.duration"}}],
        "must_not": [{"terms": {"event.dataset": ["soc.heartbeat", "soc.probe"]}}]}}  # fmt: skip
    hits = scan(es, index=f"{prefix}-events-*", query={"query": query},
                _source=["@timestamp", "event.duration"])  # fmt: skip
    out = [(datetime.fromisoformat(h["_source"]["@timestamp"].replace("Z", "+00:00")),
            h["_source"]["event"]["duration"] / 1e6) for h in hits]  # fmt: skip
    return sorted(out)


def evidence(window: list[float], train: np.ndarray, shares: list[float]) -> tuple[float, float]:
    """(best rung's binomial tail, Fisher's p) of one window's latencies."""
    n = len(window)
    best = 1.0
    for rung, share in zip(LATENCY_RUNGS_MS[1:], shares[1:], strict=True):
        k = sum(ms >= rung for ms in window)
        if k and share > 0:
            best = min(best, float(stats.binom.sf(k - 1, n, share)))
    tails = [max(float(np.mean(train >= ms)), 1 / len(train)) for ms in window]
    fisher = float(stats.chi2.sf(-2 * sum(math.log(t) for t in tails), 2 * n)) if n else 1.0
    return best, fisher


def report(es: Elasticsearch, prefix: str, scn: Scenario, train_span: tuple[datetime, datetime],
           alpha: float) -> None:  # fmt: skip
    train = np.array([ms for _, ms in latencies(es, prefix, scn, *train_span)])
    q = {p: float(np.percentile(train, p)) for p in (50, 75, 90, 95, 99)}
    minutes = (scn.end - scn.start) / timedelta(minutes=1)
    factor = float(scn.spec.max_factor or 1)
    print(f"\n{scn.id} ({scn.where.province.name} {scn.service}, {scn.start:%a %H:%M} UTC, "
          f"{minutes:.0f} min, x{factor:.0f}): training {len(train)} timed events, "
          + ", ".join(f"p{p} {v:.0f}" for p, v in q.items()) + " ms")  # fmt: skip
    for p in (75, 90, 95, 99):
        need = q[p] / q[50]
        print(f"  median past the usual p{p}: factor {need:.2f}, "
              f"{(need - 1) / (factor - 1) * minutes:.1f} min in")  # fmt: skip
    shares = [float(np.mean(train >= rung)) for rung in LATENCY_RUNGS_MS]
    events = latencies(es, prefix, scn, scn.start - WINDOWS[-1], scn.end)
    first: dict[str, float] = {}
    end = scn.start + STEP
    while end <= scn.end and len(first) < 2:
        for span in WINDOWS:
            window = [ms for at, ms in events if end - span <= at < end]
            best, fisher = evidence(window, train, shares)
            m = (end - scn.start) / timedelta(minutes=1)
            for name, tail in (("rung count", best), ("Fisher", fisher)):
                if tail < alpha and name not in first:
                    first[name] = m
            if span == WINDOWS[-1] and m <= 60:
                print(f"  step ending +{m:3.0f} min: {len(window):3d} requests in 15 min, "
                      f"median {np.median(window) if window else 0:6.0f} ms, best rung count "
                      f"p {best:.1e}, Fisher p {fisher:.1e}")  # fmt: skip
        end += STEP
    for name in ("rung count", "Fisher"):
        at = first.get(name)
        print(f"  first step past alpha {alpha:g} ({name}): "
              + (f"+{at:.0f} min" if at is not None else "never"))  # fmt: skip


def main() -> None:
    from anomaly_latency import kept_days_parser

    args = kept_days_parser(__doc__ or "").parse_args()
    score_end = datetime.fromisoformat(args.end).astimezone(UTC)
    score_start = local_midnight(score_end - timedelta(days=args.score_days))
    train_span = (score_start - timedelta(days=args.train_days), score_start)
    settings = load_settings(index_prefix=args.prefix)
    es, _ = ensure_elasticsearch(settings)
    for scn in scenarios.load(SCENARIOS, catalogue(), score_start):
        if scn.kind.value == "slow_degradation":
            report(es, args.prefix, scn, train_span, settings.anomaly_alpha)


if __name__ == "__main__":
    main()
