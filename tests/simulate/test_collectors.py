"""What the simulator writes goes through the collectors' own parsers and normaliser without a
single dead letter, and comes out as the very events the backfill indexes directly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from soc.es.indices import Indices
from soc.localities import catalogue
from soc.simulate import scenarios
from soc.simulate.flows import write_files
from soc.simulate.formats import to_ecs
from soc.simulate.service import Plan, records
from soc.simulate.sinks import syslog_frame

pytest.importorskip("collectors.parsers")
pytest.importorskip("collectors.normalise")

from collectors import parsers
from collectors.models import RawLine, SourceType
from collectors.normalise import Normaliser
from soc.inventory import load_inventory

LIVE = Path(__file__).resolve().parents[2] / "scenarios" / "web-attack.yaml"
MONDAY_10 = datetime(2026, 11, 23, 3, tzinfo=UTC)  # 10:00 in Viet Nam


def flat(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def plan_and_window() -> tuple[Plan, datetime, datetime]:
    # The web attack brings quotes, percent-escapes and scanner agents into the access log.
    found = scenarios.load(LIVE, catalogue(), MONDAY_10)
    plan = Plan(seed=11, provinces=("46", "01"), scenarios=tuple(found))
    return plan, MONDAY_10, MONDAY_10 + timedelta(minutes=15)


def test_log_files_parse_without_dead_letters_into_the_backfill_events(tmp_path: Path) -> None:
    plan, start, end = plan_and_window()
    root = tmp_path / "logs"
    report = write_files(plan, start, end, root)
    inventory = load_inventory(root / "inventory.yaml")
    normaliser = Normaliser(inventory, Indices("sim"), "test", now=lambda: end)
    produced: list[dict[str, Any]] = []
    for path in sorted(root.rglob("*.log")):
        offset = 0
        for line in path.read_bytes().splitlines(keepends=True):
            raw = RawLine("sim-files", SourceType.FILE, line.rstrip(b"\n"), end,
                          path=str(path), offset=offset)  # fmt: skip
            offset += len(line)
            action = normaliser.normalise(raw, parsers.get("auto"))
            assert action.kind == "event", action.document
            produced.append(flat(dict(action.document)))
    assert len(produced) == report.lines > 500
    expected = [flat(to_ecs(r)) for r in records(plan, start, end)]
    by_time: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for doc in produced:
        by_time.setdefault((doc["@timestamp"], doc.get("source.ip")), []).append(doc)
    for want in expected:
        candidates = by_time[(want["@timestamp"], want.get("source.ip"))]
        assert any(all(doc.get(k) == v for k, v in want.items()) for doc in candidates), want


def test_syslog_frames_parse_without_dead_letters(tmp_path: Path) -> None:
    plan, start, _ = plan_and_window()
    (tmp_path / "inv.yaml").write_text("systems: []\n")
    normaliser = Normaliser(load_inventory(tmp_path / "inv.yaml"), Indices("sim"), "test",
                            now=lambda: start)  # fmt: skip
    apps = [r for r in records(plan, start, start + timedelta(minutes=5)) if hasattr(r, "host")]
    assert len(apps) > 50
    for rec in apps:
        raw = RawLine("sim-syslog", SourceType.SYSLOG, syslog_frame(rec), start, peer="127.0.0.1")
        action = normaliser.normalise(raw, parsers.get("syslog"))
        assert action.kind == "event", action.document
        doc = flat(dict(action.document))
        for key, value in flat(to_ecs(rec)).items():
            assert doc.get(key) == value, (key, doc)
