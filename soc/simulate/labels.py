"""The ground-truth labels file: one JSON object per line, one line per scenario and place.

Written by every run that injects scenarios, read by ``soc simulate evaluate``. A bad line is an
error naming the file and the line number, never skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import orjson

from soc.errors import SimulationError
from soc.simulate.models import Label


def write(path: Path, labels: Iterable[Label]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("wb") as fh:
        for label in labels:
            fh.write(orjson.dumps(label.to_json()) + b"\n")
            count += 1
    return count


def read(path: Path) -> list[Label]:
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise SimulationError(f"{path}: cannot read the labels file: {exc.strerror}") from None
    out = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            out.append(Label.from_json(orjson.loads(line)))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise SimulationError(f"{path}:{number}: not a valid label: {exc!r}") from None
    return out
