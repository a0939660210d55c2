"""The measured alternative: an Isolation Forest on the same features, judged on the same truth.

Used by ``bench/anomaly.py``. Each feature row becomes a vector of residuals against the seasonal
baseline (log count ratio, each ratio's excess over its baseline, p95 over its median), so the
forest sees departures rather than city sizes; the forest is fitted on the training week's rows
and flags scored rows with its own decision (``contamination="auto"``). Flagged rows are matched
against the simulator's labels exactly like the alerts of the live model. Silence cannot be
represented (a silent key has no row), which is itself one of the reasons for the choice.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest

from detectors.anomaly.baseline.model import Model
from detectors.anomaly.features import RATIOS, Features, Level, extract
from detectors.base import Window
from soc.simulate.evaluate import SeenAlert, evaluate
from soc.simulate.models import Label

#: The forest learns from the last two days of the training week (hourly rows with every
#: sub-aggregation are the slow path; two days are tens of thousands of rows, plenty for it).
IFOREST_TRAIN = timedelta(days=2)


def vector(model: Model, row: Features, start: datetime, end: datetime) -> list[float] | None:
    base = model.baseline(row.key)
    if base is None:
        return None
    expected = model.expected(row.key, base, start, end)
    out = [math.log1p(row.count) - math.log1p(expected)]
    for name in RATIOS:
        num, den = row.ratio(name)
        out.append((num / den - base.ratios[name]) if den else 0.0)
    if row.p95_ms is not None and base.p95_ms:
        out.append(row.p95_ms / base.p95_ms - 1.0)
    else:
        out.append(0.0)
    return out


def compare(
    es: Any,
    indices: Any,
    model: Model,
    windows: list[Window],
    labels: list[Label],
    train_start: datetime,
    train_end: datetime,
    grace: timedelta,
    top_n: int,
) -> dict[str, Any]:
    hour = timedelta(hours=1)
    history = (
        r
        for day in _days(max(train_start, train_end - IFOREST_TRAIN), train_end)
        for level in Level
        for r in extract(es, indices, day, day + timedelta(days=1), hour, level)
    )
    train = [v for r in history if (v := vector(model, r, r.bucket, r.bucket + hour)) is not None]
    forest = IsolationForest(n_estimators=200, random_state=0).fit(np.array(train))
    candidates: list[tuple[float, SeenAlert]] = []
    rows = 0
    for w in windows:
        scored = [r for level in Level for r in extract(es, indices, w.start, w.end, w.span, level)]
        rows += len(scored)
        kept = [(r, v) for r in scored if (v := vector(model, r, w.start, w.end)) is not None]
        if not kept:
            continue
        # score_samples is minus the paper's anomaly score; "auto" flags above 0.5.
        scores = -forest.score_samples(np.array([v for _, v in kept]))
        for (r, _), score in zip(kept, scores, strict=True):
            if score > 0.5:
                candidates.append(
                    (
                        float(score),
                        SeenAlert(
                            id=f"{r.key.text()}@{w.start.isoformat()}",
                            rule="iforest",
                            detector="iforest",
                            start=w.start,
                            end=w.end,
                            province=r.key.province,
                            ward=r.key.ward,
                            service=r.key.service,
                        ),
                    )
                )
    auto = evaluate(labels, [a for _, a in candidates], grace=grace)
    candidates.sort(key=lambda c: -c[0])
    top = evaluate(labels, [a for _, a in candidates[:top_n]], grace=grace)
    return {
        "training_rows": len(train),
        "scored_rows": rows,
        "auto": auto,
        "top": top,
        "top_n": top_n,
    }


def _days(start: datetime, end: datetime) -> list[datetime]:
    out, day = [], start
    while day < end:
        out.append(day)
        day += timedelta(days=1)
    return out
