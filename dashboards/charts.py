"""An inline SVG chart of an anomaly metric around an incident: observed values and expected band.

The points come from the incident's anomaly alerts: each alert's ``explanation.features`` gives, for
its window, the observed value, the expected value and the band the baseline allowed. This module
only computes geometry (numbers in, coordinates out); the template draws it, so no text from an
alert is ever placed in the SVG unescaped. It must not read Elasticsearch.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

WIDTH, HEIGHT, PAD = 640, 200, 32


@dataclass(frozen=True)
class Point:
    at: datetime
    observed: float
    expected: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class Chart:
    """Polylines and a band polygon in SVG user units, with the axis labels' values."""

    feature: str
    unit: str
    observed: str
    expected: str
    band: str
    dots: tuple[tuple[float, float], ...]
    y_max: float
    start: datetime
    end: datetime
    width: int = WIDTH
    height: int = HEIGHT


def points(alerts: list[tuple[datetime, dict[str, Any]]]) -> tuple[str, str, list[Point]]:
    """The first deviating feature of each anomaly alert, as (feature, unit, points by time)."""
    found: list[Point] = []
    feature = unit = ""
    for at, explanation in sorted(alerts, key=lambda pair: pair[0]):
        features = explanation.get("features") or []
        if not features or not isinstance(features[0], dict):
            continue
        first = features[0]
        if feature and first.get("feature") != feature:
            continue  # one metric per chart: the first one seen
        observed = _number(first.get("observed"))
        if observed is None:
            continue
        feature = str(first.get("feature") or "")
        unit = str(first.get("unit") or "")
        band = first.get("band") or [None, None]
        low, high = [*band, None, None][:2] if isinstance(band, list) else (None, None)
        found.append(Point(at, observed, _number(first.get("expected")), _number(low),
                           _number(high)))  # fmt: skip
    return feature, unit, found


def seasonal(volume: dict[datetime, int], start: datetime, days: int) -> list[Point]:
    """The series from ``start`` on, each point with the band of the same time on the ``days``
    days before (lowest to highest, their median as expected): a band for every point, not only
    where an alert fired."""
    out = []
    for at in sorted(t for t in volume if t >= start):
        past = [volume[p] for k in range(1, days + 1) if (p := at - timedelta(days=k)) in volume]
        if past:
            out.append(Point(at, volume[at], statistics.median(past), min(past), max(past)))
        else:
            out.append(Point(at, volume[at], None, None, None))
    return out


def chart(
    feature: str, unit: str, pts: list[Point], marked: list[datetime] | None = None
) -> Chart | None:
    """The chart of ``pts``; None when there is nothing to draw. Dots mark the points at or just
    after the times in ``marked`` (the anomalous buckets), or every point when it is None."""
    if not pts:
        return None
    values = [p.observed for p in pts]
    values += [v for p in pts for v in (p.expected, p.low, p.high) if v is not None]
    y_max = max(values) * 1.1 or 1.0
    start, end = pts[0].at, pts[-1].at
    span = (end - start).total_seconds() or 1.0

    def x(at: datetime) -> float:
        if len(pts) == 1:
            return WIDTH / 2
        return round(PAD + (WIDTH - 2 * PAD) * (at - start).total_seconds() / span, 1)

    def y(value: float) -> float:
        return round(HEIGHT - PAD - (HEIGHT - 2 * PAD) * value / y_max, 1)

    def line(pairs: list[tuple[float, float]]) -> str:
        return " ".join(f"{a},{b}" for a, b in pairs)

    observed = [(x(p.at), y(p.observed)) for p in pts]
    expected = [(x(p.at), y(p.expected)) for p in pts if p.expected is not None]
    # An open-ended band (no upper limit, as for silence) is drawn up to the top of the chart.
    upper = [(x(p.at), y(p.high if p.high is not None else y_max)) for p in pts]
    lower = [(x(p.at), y(p.low if p.low is not None else 0.0)) for p in reversed(pts)]
    dots = (
        tuple(observed)
        if marked is None
        else tuple(
            (x(p.at), y(p.observed)) for p in pts if any(_near(p.at, m, pts) for m in marked)
        )
    )
    return Chart(feature, unit, line(observed), line(expected), line(upper + lower),
                 dots, round(y_max, 2), start, end)  # fmt: skip


def _near(at: datetime, mark: datetime, pts: list[Point]) -> bool:
    """``mark`` falls in the bucket starting at ``at``."""
    step = (pts[1].at - pts[0].at) if len(pts) > 1 else timedelta(0)
    return at <= mark < at + step if step else at == mark


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
