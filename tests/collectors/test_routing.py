"""``soc collect check`` refuses inventory path patterns that cannot route any line."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.config import load_config
from collectors.routing import check_routes

BASE = """\
collector: {id: c}
inventory:
  systems:
    - id: hn
      service: web-portal
      province: "01"
      paths:
        - PATTERN
sources:
  - {id: files, type: file, paths: ["/var/log/**/*.log"]}
"""


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("/var/log/hn/{provnice}/*.log", "unknown placeholder {provnice}"),
        ("/srv/other/*.log", "no file source reads such files"),
        ("hn/*.log", "no file source reads such files"),  # relative: never an absolute path
    ],
)
def test_unroutable_patterns_are_refused_with_file_and_line(
    tmp_path: Path, pattern: str, why: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(BASE.replace("PATTERN", pattern))
    (problem,) = check_routes(load_config(path))
    assert (problem.path, problem.line) == (str(path), 8)
    assert why in problem.message


def test_routable_patterns_pass(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    two = "/var/log/hn/*.log\n        - /var/log/{province}/{service}/*.log"
    body = BASE.replace("PATTERN", two)
    path.write_text(body)
    assert check_routes(load_config(path)) == []
    shadowed = body.replace("{province}/{service}/*.log", "hn/*.log")
    path.write_text(shadowed)
    (problem,) = check_routes(load_config(path))
    assert "is the same as inventory.systems.0.paths.0" in problem.message
