"""A rule's shipped test events: numbered ``_cycle`` values, and a broken ``_cycle`` named with
its file (no Elasticsearch needed)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from detectors.sigma.models import Case
from detectors.sigma.testcases import load_tests, materialise
from soc.errors import RuleError


def test_a_cycle_of_numbered_values_and_a_list_are_taken_in_turn() -> None:
    spec = {"service.name": "vneid", "_repeat": 5, "_every": 10,
            "_cycle": {"user.name": {"format": "hn{:03d}", "count": 3},
                       "source.ip": ["14.160.0.1", "14.160.0.2"]}}  # fmt: skip
    events = materialise(Case("x", (spec,)), datetime(2026, 12, 1, tzinfo=UTC))
    assert [e["user"]["name"] for e in events] == ["hn000", "hn001", "hn002", "hn000", "hn001"]
    assert [e["source"]["ip"] for e in events][:3] == ["14.160.0.1", "14.160.0.2", "14.160.0.1"]
    assert events[4]["@timestamp"].startswith("2026-12-01T00:00:40")


@pytest.mark.parametrize(
    "cycle",
    ["{user.name: {format: 'u{}'}}", "{user.name: []}", "{user.name: {format: 'u{1}', count: 3}}",
     "{user.name: {format: 'u{}', count: 0}}", "{user.name: u1}"],
)  # fmt: skip
def test_a_broken_cycle_is_refused_with_its_file(tmp_path: Path, cycle: str) -> None:
    path = tmp_path / "x.tests.yaml"
    path.write_text(f"rule: r\nfire:\n  - name: c\n    events: [{{_cycle: {cycle}}}]\n"
                    "quiet:\n  - name: q\n    events: [{}]\n")  # fmt: skip
    with pytest.raises(RuleError, match="_cycle"):
        load_tests(path, "rules/x.tests.yaml")
