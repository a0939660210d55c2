"""Score any CSV time series offline, so a detector can be judged on data from elsewhere.

Input: ``timestamp,value[,value...]`` with an optional header line; timestamps are ISO 8601 (an
offset or ``Z``; naive means UTC) or Unix seconds. Output: the same rows plus ``score`` in
``[0, 1]`` and ``flag`` (1 = the first row of an anomalous episode).

Two methods:

* ``stream`` (default): the live model's streaming engine (:mod:`detectors.anomaly.stream`),
  row by row, each column its own series (a row of the engine's block, as a live series is),
  causally (a row's score uses the rows up to it only).
  A row's score is its highest column's; 0.53 is the engine's one alert line (``p = 1.7e-5``).
* ``iforest``: scikit-learn's IsolationForest on the robustly scaled values, fitted on the whole
  file (so *not* causal: a measured comparison, not a detector to run live); ``score`` is its
  anomaly score ``2^(-E(h)/c(n))``, flagged by the forest's own decision.

A malformed line raises :class:`~soc.errors.CsvInputError` naming the file and line; nothing is
skipped silently. This module must not talk to Elasticsearch.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import numpy as np
from sklearn.ensemble import IsolationForest

from detectors.anomaly.stream import Engine
from soc import timeutil
from soc.errors import CsvInputError

MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True, slots=True)
class Series:
    """A parsed CSV: its column names, timestamps and a (rows x columns) value matrix."""

    columns: tuple[str, ...]
    stamps: tuple[datetime, ...]
    values: np.ndarray
    raw: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Scored:
    series: Series
    scores: np.ndarray
    flags: np.ndarray
    method: str


def _stamp(text: str) -> datetime:
    text = text.strip()
    try:
        return datetime.fromtimestamp(float(text), tz=UTC)
    except ValueError:
        pass
    return timeutil.parse(text)


def parse(lines: Iterable[str], where: str) -> Series:
    rows = list(csv.reader(lines))
    columns: tuple[str, ...] | None = None
    stamps: list[datetime] = []
    values: list[list[float]] = []
    raw: list[tuple[str, ...]] = []
    for number, row in enumerate(rows, start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < 2:
            raise CsvInputError(f"{where}:{number}: expected timestamp,value[,value...]")
        try:
            at = _stamp(row[0])
        except ValueError:
            if columns is None and not stamps:
                columns = tuple(c.strip() for c in row[1:])  # a header line
                continue
            raise CsvInputError(f"{where}:{number}: bad timestamp {row[0][:40]!r}") from None
        width = len(columns) if columns is not None else len(values[0]) if values else len(row) - 1
        if len(row) - 1 != width:
            raise CsvInputError(f"{where}:{number}: expected {width} value(s), got {len(row) - 1}")
        try:
            numbers = [float(cell) for cell in row[1:]]
        except ValueError:
            raise CsvInputError(f"{where}:{number}: a value is not a number") from None
        if not all(math.isfinite(v) for v in numbers):
            raise CsvInputError(f"{where}:{number}: a value is not finite")
        stamps.append(at)
        values.append(numbers)
        raw.append(tuple(row))
    if not values:
        raise CsvInputError(f"{where}: no data rows")
    width = len(values[0])
    names = columns or tuple(f"value{i + 1}" for i in range(width))
    return Series(names, tuple(stamps), np.array(values, dtype=float), tuple(raw))


def read(path: Path) -> Series:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CsvInputError(f"{path}: cannot read ({exc})") from None
    return parse(io.StringIO(text), str(path))


def stream_scores(series: Series, engine: Engine | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run the streaming engine over every column; (row score, row flag)."""
    return stream_scores_many([series], engine)[0]


def stream_scores_many(
    files: Sequence[Series], engine: Engine | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`stream_scores` of several files at once, as the live bank runs: every column of
    every file is a row of one engine block and the files are stepped side by side, row ``j``
    of each file at step ``j`` with its own timestamp (``Engine.replay``). Each column is still
    its own causal series; 58 files cost as many engine steps as the longest has rows."""
    engine = engine or Engine()
    times: list[np.ndarray] = []
    values: list[np.ndarray] = []
    owner: list[int] = []
    for i, series in enumerate(files):
        at = np.array([stamp.timestamp() for stamp in series.stamps])
        for column in range(series.values.shape[1]):
            times.append(at)
            values.append(series.values[:, column])
            owner.append(i)
    got = engine.replay(times, values)
    out: list[tuple[np.ndarray, np.ndarray]] = []
    for i, series in enumerate(files):
        mine = [row for row, o in enumerate(owner) if o == i]
        n = len(series.stamps)
        # + 0.0: a score of -0.0 (p = 1) is written as 0
        score = np.asarray(got.score[mine, :n].max(axis=0) + 0.0)
        out.append((score, np.asarray(got.alert[mine, :n].any(axis=0))))
    return out


def score(series: Series, method: str = "stream", engine: Engine | None = None) -> Scored:
    if method == "stream":
        scores, flags = stream_scores(series, engine)
        return Scored(series, scores, flags, method)
    if method == "iforest":
        if len(series.stamps) < 16:
            raise CsvInputError("iforest needs at least 16 rows; use --method stream")
        features = _scaled(series.values)
        forest = IsolationForest(n_estimators=200, random_state=0).fit(features)
        scores = -forest.score_samples(features)
        return Scored(series, scores, forest.predict(features) == -1, method)
    raise CsvInputError(f"unknown method {method!r}: use stream or iforest")


def score_many(
    files: Sequence[Series], method: str = "stream", engine: Engine | None = None
) -> list[Scored]:
    """:func:`score` of several files; the stream engine runs them in one pass, side by side."""
    if method != "stream":
        return [score(series, method, engine) for series in files]
    scored = stream_scores_many(files, engine)
    return [
        Scored(series, scores, flags, method)
        for series, (scores, flags) in zip(files, scored, strict=True)
    ]


def _scaled(values: np.ndarray) -> np.ndarray:
    med = np.median(values, axis=0)
    mad = np.median(np.abs(values - med), axis=0)
    return np.asarray((values - med) / np.maximum(MAD_TO_SIGMA * mad, 1e-9))


def write(scored: Scored, out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["timestamp", *scored.series.columns, "score", "flag"])
    for raw, value, flag in zip(scored.series.raw, scored.scores, scored.flags, strict=True):
        writer.writerow([*raw, f"{float(value):.4f}", int(bool(flag))])
