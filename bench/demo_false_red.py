"""False RED in a demo run: incidents in a province or commune that no scenario touched.

Reads the incidents a running (or finished) ``soc demo`` made since its live scenarios were written
and the scenario log it wrote (``var/demo/scenarios.yaml``), and writes
``bench/reports/demo-false-red.md``::

    SOC_ES_HTTP_PORT=9271 .venv/bin/python bench/demo_false_red.py   # the demo's own node

Two checks, as issue 18 states them: (1) no anomaly incident in a province or commune without a
scenario; (2) the board RED only where a scenario is: every ``high``/``critical`` incident (the
board's RED rule, ``soc/status/service.py``) is in a scenario's province, and, when it names a
commune, in a commune the scenario touched (a province-wide scenario covers its communes).
"""

from __future__ import annotations

import argparse
import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from soc.config import load_settings
from soc.es.client import make_client
from soc.es.indices import Indices
from soc.localities import catalogue
from soc.simulate import scenarios

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "bench" / "reports" / "demo-false-red.md"
SEVERE = {"high", "critical"}


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scenarios", type=Path, default=ROOT / "var" / "demo" / "scenarios.yaml")
    parser.add_argument("--since", default=None, help="ISO time (default: the file's mtime).")
    parser.add_argument("--report", type=Path, default=REPORT)
    parser.add_argument("--note", default="", help="How the demo was run (for the report).")
    return parser.parse_args()


def covered(scenario_list: list[scenarios.Scenario]) -> tuple[set[str], set[str], set[str]]:
    """Provinces with a scenario, those with a province-wide one, and the communes touched."""
    provinces, whole, wards = set(), set(), set()
    for s in scenario_list:
        provinces.add(s.where.province.code)
        touched = [w.ward.code for w in s.wards if w.ward is not None]
        if s.where.ward is not None:
            touched.append(s.where.ward.code)
        if touched:
            wards.update(touched)
        else:
            whole.add(s.where.province.code)
    return provinces, whole, wards


def false_place(doc: dict[str, Any], cover: tuple[set[str], set[str], set[str]]) -> bool:
    provinces, whole, wards = cover
    loc = doc.get("locality", {})
    province = loc.get("province", {}).get("code")
    if province not in provinces:
        return True
    ward_codes = set(doc["incident"].get("ward_codes") or [])
    ward = loc.get("ward", {}).get("code")
    if ward:
        ward_codes.add(ward)
    return bool(ward_codes) and province not in whole and not (ward_codes & wards)


def main() -> None:
    args = _args()
    since = (
        datetime.fromisoformat(args.since)
        if args.since
        else datetime.fromtimestamp(os.path.getmtime(args.scenarios), UTC)
    )
    found = scenarios.load(args.scenarios, catalogue(), since)
    settings = load_settings()
    es = make_client(settings)
    indices = Indices(settings.index_prefix)
    query = {"range": {"incident.created": {"gte": since.isoformat()}}}
    hits = es.search(index=indices.incidents, query=query, size=10000)["hits"]["hits"]
    docs = [h["_source"] for h in hits]
    cover = covered(found)
    anomaly = [d for d in docs if "anomaly" in (d["incident"].get("detectors") or [])]
    severe = [d for d in docs if d["incident"].get("severity") in SEVERE]
    false_anomaly = [d for d in anomaly if false_place(d, cover)]
    false_red = [d for d in severe if false_place(d, cover)]
    now = datetime.now(UTC)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    out = [
        "# Demo: anomaly incidents and RED outside the scenarios",
        "",
        f"Run {now:%Y-%m-%d %H:%M} UTC, `.venv/bin/python bench/demo_false_red.py` over the demo's "
        f"incidents created since {since:%Y-%m-%d %H:%M:%S} UTC ({(now - since).seconds // 60} "
        f"min of demo), load average {load} (2 cores, shared). {args.note}",
        "",
        f"Scenarios: {len(found)} in {len(cover[0])} provinces "
        f"({', '.join(sorted(Counter(s.kind.value for s in found)))}).",
        "",
        "| check | incidents | outside any scenario |",
        "| --- | ---: | ---: |",
        f"| all incidents | {len(docs)} | {sum(false_place(d, cover) for d in docs)} |",
        f"| anomaly incidents (goal: 0 outside) | {len(anomaly)} | **{len(false_anomaly)}** |",
        f"| high/critical = RED on the board (goal: 0 outside) | {len(severe)} "
        f"| **{len(false_red)}** |",
        "",
    ]
    bad = {id(d): d for d in false_anomaly + false_red}
    if bad:
        out += [
            "| created | severity | detectors | province | commune | title |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for d in sorted(bad.values(), key=lambda d: d["incident"]["created"]):
            inc, loc = d["incident"], d.get("locality", {})
            out.append(
                f"| {inc['created'][11:19]} | {inc.get('severity')} "
                f"| {', '.join(inc.get('detectors') or [])} "
                f"| {loc.get('province', {}).get('name', '')} "
                f"| {loc.get('ward', {}).get('name', '')} "
                f"| {str(inc.get('title', '')).replace('|', '/')} |"
            )
    args.report.write_text("\n".join(out) + "\n", encoding="utf-8")
    print("\n".join(out))


if __name__ == "__main__":
    main()
