"""What the engine remembers of one series between two observations, and its checkpoint form.

A state is a few dozen numbers (levels, a 48-slot seasonal profile, a small error histogram, the
last few p-values), so 26,000 series fit in memory and in one checkpoint document. ``to_dict`` /
``from_dict`` give plain JSON (never pickle: loading a checkpoint cannot run code); a dict of
another ``FORMAT`` raises :class:`~soc.errors.AnomalyError`.

Only ``engine.py`` changes a state.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from detectors.anomaly.stream import season, tails
from soc.errors import AnomalyError

FORMAT = "soc-stream-state/1"


@dataclass(slots=True)
class SeriesState:
    n: int = 0
    """Observations seen."""
    first_t: float = 0.0
    last_t: float = 0.0
    step: float = 0.0
    """The usual interval between observations (seconds), learnt."""
    last_x: float = 0.0
    lo: float = math.inf
    hi: float = -math.inf
    counts: bool = True
    """Every value so far a non-negative integer: a count, judged with a Poisson floor too."""
    quantum: float = math.inf
    """Smallest non-zero change seen: the series' resolution (1 for counts)."""
    levels: list[float] = field(default_factory=list)
    """One smoothed level per plain view (fast and slow)."""
    slevel: float = 0.0
    """Seasonal view: smoothed deseasonalised level."""
    season: list[float] = field(default_factory=lambda: [0.0] * season.SLOTS)
    season_n: list[int] = field(default_factory=lambda: [0] * season.SLOTS)
    maes: list[float] = field(default_factory=list)
    """Each view's running mean absolute error (plain views, then the seasonal one)."""
    track: list[float] = field(default_factory=list)
    """Each view's mean absolute error over a longer memory: the view with the lowest judges."""
    hists: list[list[float]] = field(default_factory=list)
    """Each view's histogram of past standardised errors (``tails.py``)."""
    gains: list[float] = field(default_factory=list)
    fits: list[list[float]] = field(default_factory=list)
    """Each view's tail model (``tails.fit``), refitted every few observations."""
    recents: list[list[float]] = field(default_factory=list)
    """Each view's last p-values (newest last), combined to see a sustained change."""
    quiet: int = 0
    """Observations left that relearn after a gap, restart or boundary, without alerting."""
    hold: int = 0
    """Observations left in which an alert already raised damps the reported score."""
    since: float | None = None
    """Start of the current anomalous episode (epoch seconds), if one is open."""

    @classmethod
    def new(cls, views: int, prior_weight: float) -> SeriesState:
        return cls(
            levels=[0.0] * (views - 1),
            maes=[0.0] * views,
            track=[0.0] * views,
            hists=[tails.prior(prior_weight) for _ in range(views)],
            gains=[1.0] * views,
            fits=[[] for _ in range(views)],
            recents=[[] for _ in range(views)],
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("lo", "hi", "quantum"):
            if not math.isfinite(data[key]):
                data[key] = None
        return {"format": FORMAT, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeriesState:
        if data.get("format") != FORMAT:
            raise AnomalyError(
                f"stream state of format {data.get('format')!r}, expected {FORMAT!r}: "
                "start the series afresh"
            )
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        defaults = {"lo": math.inf, "hi": -math.inf, "quantum": math.inf}
        for key, default in defaults.items():
            if values.get(key) is None:
                values[key] = default
        hists = values.get("hists", [])
        if any(len(h) != tails.BINS for h in hists) or len(values.get("season", [])) != (
            season.SLOTS
        ):
            raise AnomalyError(f"stream state of format {FORMAT!r} with wrong sizes")
        return cls(**values)
