"""The CSV scorer: known anomalies in a seasonal series are flagged, the rest is not."""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from detectors.anomaly import csvscore
from soc.cli import app
from soc.errors import CsvInputError

START = datetime(2026, 10, 1, tzinfo=UTC)
SPIKE, DIP = 200, 333


def _series(path: Path, *, header: bool = True) -> Path:
    """Three weeks hourly: a daily cycle plus noise; a spike in column 1, a dip in column 2."""
    rng = np.random.default_rng(7)
    lines = ["timestamp,requests,latency_ms"] if header else []
    for i in range(21 * 24):
        at = START + timedelta(hours=i)
        requests = 100 + 60 * math.sin(2 * math.pi * at.hour / 24) + rng.normal(0, 5)
        latency = 200 + rng.normal(0, 10)
        if i == SPIKE:
            requests *= 4
        if i == DIP:
            latency = 20.0
        lines.append(f"{at.isoformat().replace('+00:00', 'Z')},{requests:.2f},{latency:.1f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_robust_scores_flag_exactly_the_injected_rows(tmp_path: Path) -> None:
    scored = csvscore.score(csvscore.read(_series(tmp_path / "s.csv")))
    assert scored.series.columns == ("requests", "latency_ms")
    assert ((scored.scores >= 0) & (scored.scores <= 1)).all()
    assert list(np.flatnonzero(scored.flags)) == [SPIKE, DIP]
    assert scored.scores[SPIKE] > 0.8
    assert np.median(scored.scores) < 0.3


def test_isolation_forest_ranks_the_injected_rows_highest(tmp_path: Path) -> None:
    scored = csvscore.score(csvscore.read(_series(tmp_path / "s.csv", header=False)), "iforest")
    assert scored.series.columns == ("value1", "value2")
    top = set(np.argsort(scored.scores)[-2:])
    assert top == {SPIKE, DIP}
    assert scored.flags[SPIKE]
    assert scored.flags[DIP]
    assert ((scored.scores >= 0) & (scored.scores <= 1)).all()


def test_cli_writes_score_and_flag_per_row(tmp_path: Path) -> None:
    source, target = _series(tmp_path / "s.csv"), tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["anomaly", "score-csv", str(source), "-o", str(target)])
    assert result.exit_code == 0, result.output
    rows = target.read_text().splitlines()
    assert rows[0] == "timestamp,requests,latency_ms,score,flag"
    assert len(rows) == 21 * 24 + 1
    flagged = [i for i, row in enumerate(rows[1:]) if row.endswith(",1")]
    assert flagged == [SPIKE, DIP]


def test_cli_scores_several_files_in_one_run_as_one_by_one(tmp_path: Path) -> None:
    one, out = _series(tmp_path / "one.csv"), tmp_path / "out"
    two = tmp_path / "two.csv"
    lines = one.read_text().splitlines()
    two.write_text("\n".join(lines[:1] + lines[1::2]) + "\n")  # every other hour: other times
    result = CliRunner().invoke(app, ["anomaly", "score-csv", str(one), str(two), "-d", str(out)])
    assert result.exit_code == 0, result.output
    for source in (one, two):
        alone = tmp_path / f"alone-{source.name}"
        single = CliRunner().invoke(app, ["anomaly", "score-csv", str(source), "-o", str(alone)])
        assert single.exit_code == 0, single.output
        assert (out / source.name).read_text() == alone.read_text()
    refused = CliRunner().invoke(app, ["anomaly", "score-csv", str(one), str(two)])
    assert refused.exit_code == 1
    assert "--output-dir" in refused.output


def test_malformed_lines_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,v\n2026-10-01T00:00:00Z,1\nyesterday,2\n")
    with pytest.raises(CsvInputError, match=r"bad\.csv:3: bad timestamp 'yesterday'"):
        csvscore.read(bad)
    with pytest.raises(CsvInputError, match=r"<x>:2: a value is not a number"):
        csvscore.parse(io.StringIO("2026-10-01T00:00:00Z,1\n2026-10-01T01:00:00Z,abc\n"), "<x>")
    with pytest.raises(CsvInputError, match=r"<x>:2: expected 1 value\(s\), got 2"):
        csvscore.parse(io.StringIO("1700000000,1\n1700003600,1,2\n"), "<x>")
    result = CliRunner().invoke(app, ["anomaly", "score-csv", str(bad)])
    assert result.exit_code == 1
    assert "bad.csv:3" in result.output
