"""The state of many series of the streaming engine: numpy arrays, one row per series.

A :class:`Block` holds what the engine (``engine.py``) remembers of each series between two
observations (levels, a 48-slot seasonal profile, a small error histogram per view, the last few
p-values, the episode): a few hundred numbers a row, so 26,000 series fit in memory and in one
checkpoint. :class:`Scores` is what one step of the engine says of the rows it observed.

A block saves to compressed ``.npz`` bytes (``to_bytes`` / ``from_bytes``: numeric arrays only,
``allow_pickle=False``, so loading cannot run code); a row can also be filled from the first
checkpoint format's per-series JSON (``put_json``). No I/O; only ``engine.py`` changes a block's
numbers.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from detectors.anomaly.stream import season, tails
from detectors.anomaly.stream.tails import F, I
from soc.errors import AnomalyError

B = NDArray[np.bool_]
NBINS = tails.BINS
STATE_1 = "soc-stream-state/1"
"""One series' state in the first checkpoint format (read by :meth:`Block.put_json`)."""
NOTE_NONE, NOTE_LEARNING, NOTE_RELEARNING, NOTE_GAP = 0, 1, 2, 3
NOTES = ("", "learning", "relearning", "gap")


@dataclass(slots=True)
class Block:
    """The states of ``size`` series (rows); arrays have room for more (``capacity``)."""

    n: I
    first_t: F
    last_t: F
    step: F
    last_x: F
    lo: F
    hi: F
    counts: B
    quantum: F
    levels: F  # (rows, plain views)
    slevel: F
    season: F  # (rows, SLOTS)
    season_n: I
    maes: F  # (rows, views)
    track: F
    hists: F  # (rows, views, BINS)
    gains: F
    has_fit: B
    fits: F  # (rows, views, 3)
    recents: F  # (rows, views, window), oldest first
    rec_len: I
    quiet: I
    hold: I
    since: F  # NaN: no episode open
    size: int = 0

    @classmethod
    def empty(cls, views: int, window: int, capacity: int = 0) -> Block:
        c = capacity
        return cls(
            n=np.zeros(c, np.int64),
            first_t=np.zeros(c),
            last_t=np.zeros(c),
            step=np.zeros(c),
            last_x=np.zeros(c),
            lo=np.full(c, math.inf),
            hi=np.full(c, -math.inf),
            counts=np.ones(c, bool),
            quantum=np.full(c, math.inf),
            levels=np.zeros((c, views - 1)),
            slevel=np.zeros(c),
            season=np.zeros((c, season.SLOTS)),
            season_n=np.zeros((c, season.SLOTS), np.int64),
            maes=np.zeros((c, views)),
            track=np.zeros((c, views)),
            hists=np.zeros((c, views, NBINS)),
            gains=np.ones((c, views)),
            has_fit=np.zeros((c, views), bool),
            fits=np.zeros((c, views, 3)),
            recents=np.zeros((c, views, window)),
            rec_len=np.zeros((c, views), np.int64),
            quiet=np.zeros(c, np.int64),
            hold=np.zeros(c, np.int64),
            since=np.full(c, math.nan),
        )

    def _arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "size"}

    def add(self, count: int, prior_weight: float) -> NDArray[np.int64]:
        """Room for ``count`` new series; returns their rows (fresh states)."""
        views, window = self.maes.shape[1], self.recents.shape[2]
        need = self.size + count
        if need > self.n.shape[0]:
            fresh = Block.empty(views, window, max(need, 2 * self.n.shape[0], 64))
            for name, old in self._arrays().items():
                getattr(fresh, name)[: self.size] = old[: self.size]
            for name, arr in fresh._arrays().items():
                setattr(self, name, arr)
        rows = np.arange(self.size, need)
        self.hists[rows] = tails.prior(prior_weight)
        self.size = need
        return rows

    def to_bytes(self) -> bytes:
        """An ``.npz`` (deflated zip of ``.npy``), byte for byte the same for the same state."""
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, arr in self._arrays().items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                with zf.open(info, "w") as f:
                    np.lib.format.write_array(f, arr[: self.size], allow_pickle=False)
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Block:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {f.name: npz[f.name] for f in fields(cls) if f.name != "size"}
        if arrays["hists"].shape[2:] != (NBINS,) or arrays["season"].shape[1:] != (season.SLOTS,):
            raise AnomalyError("stream block checkpoint with wrong sizes: start afresh")
        return cls(**arrays, size=int(arrays["n"].shape[0]))

    def put_json(self, row: int, data: Mapping[str, Any], window: int) -> None:
        """Copy one series' state of the first checkpoint format into a row.

        That format (``soc-stream-state/1``: one JSON dict per series, ``None`` for an infinite
        bound) was written by the per-series engine soc had before this one; a bank checkpoint
        of format ``soc-stream-bank/1`` holds one per series. Raises :class:`AnomalyError` if
        the dict is not such a state.
        """
        if data.get("format") != STATE_1:
            raise AnomalyError(
                f"stream state of format {data.get('format')!r}, expected {STATE_1!r}"
            )
        try:
            for name in ("n", "first_t", "last_t", "step", "last_x", "counts", "slevel", "quiet"):
                getattr(self, name)[row] = data[name]
            for name, default in (("lo", math.inf), ("hi", -math.inf), ("quantum", math.inf)):
                getattr(self, name)[row] = default if data[name] is None else data[name]
            for name in ("levels", "season", "season_n", "maes", "track", "hists", "gains"):
                getattr(self, name)[row] = np.array(data[name], dtype=getattr(self, name).dtype)
            for v, fit in enumerate(data["fits"]):
                self.has_fit[row, v] = bool(fit)
                self.fits[row, v] = fit if fit else (0.0, 0.0, 0.0)
            for v, recent in enumerate(data["recents"]):
                kept = recent[-window:]
                self.rec_len[row, v] = len(kept)
                self.recents[row, v, : len(kept)] = kept
            self.hold[row] = data["hold"]
            self.since[row] = math.nan if data["since"] is None else data["since"]
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise AnomalyError(f"stream state of format {STATE_1!r} unreadable: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Scores:
    """Verdicts of the observed rows, as arrays aligned with the rows given."""

    expected: F
    low: F
    high: F
    p: F
    score: F
    alert: B
    since: F
    note: I
