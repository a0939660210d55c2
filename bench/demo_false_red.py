"""False RED in a demo run: incidents in a province or commune that no scenario touched.

Reads the incidents a running (or finished) ``soc demo`` made since its live scenarios were written
and the scenario log it wrote (``var/demo/scenarios.yaml``), and writes
``bench/reports/demo-false-red.md``::

    SOC_ES_HTTP_PORT=9271 .venv/bin/python bench/demo_false_red.py   # the demo's own node

Two checks, as issue 18 states them: (1) no anomaly incident in a province or commune without a
running scenario; (2) the board RED only where a scenario is: every ``high``/``critical``
incident (the board's RED rule, ``soc/status/service.py``) was first seen while a scenario ran in
its province and, when both name communes, in a commune the scenario touched. Also: how late the
anomaly alerts were written after their bucket closed, and (``--worker-log``) how long the live
streaming detector's first warm-up took. Each run is a dated section on top of the report; the
older runs stay below.
"""

from __future__ import annotations

import argparse
import os
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from soc.config import load_settings
from soc.demo.measure import percentile
from soc.es.client import make_client
from soc.es.indices import Indices
from soc.localities import catalogue
from soc.simulate import scenarios

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "bench" / "reports" / "demo-false-red.md"
SEVERE = {"high", "critical"}
TITLE = "# Demo: anomaly incidents and RED outside the scenarios"


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scenarios", type=Path, default=ROOT / "var" / "demo" / "scenarios.yaml")
    parser.add_argument("--since", default=None, help="ISO time (default: the file's mtime).")
    parser.add_argument(
        "--origin",
        action="append",
        default=[],
        help="ISO start of an earlier run of the same schedule (its incidents count too).",
    )
    parser.add_argument("--report", type=Path, default=REPORT)
    parser.add_argument("--note", default="", help="How the demo was run (for the report).")
    parser.add_argument(
        "--worker-log", type=Path, default=None, help="The demo worker's log (warm-up time)."
    )
    return parser.parse_args()


#: An incident belongs to a scenario at its place that started up to this much after it (clock
#: skew between the scenario file and the simulator's start) or ended up to this much before it.
EARLY = timedelta(minutes=2)
LATE = timedelta(minutes=30)


def _places(s: scenarios.Scenario) -> tuple[str, set[str]]:
    """The scenario's province and the communes it touched (none: the whole province)."""
    touched = {w.ward.code for w in s.wards if w.ward is not None}
    if s.where.ward is not None:
        touched.add(s.where.ward.code)
    return s.where.province.code, touched


def explained(doc: dict[str, Any], scenario_list: list[scenarios.Scenario]) -> bool:
    """Whether a scenario at the incident's place was running when it was first seen."""
    loc = doc.get("locality", {})
    province = loc.get("province", {}).get("code")
    wards = set(doc["incident"].get("ward_codes") or [])
    if loc.get("ward", {}).get("code"):
        wards.add(loc["ward"]["code"])
    seen = datetime.fromisoformat(doc["incident"]["first_seen"])
    for s in scenario_list:
        where, touched = _places(s)
        if where != province or not (s.start - EARLY <= seen <= s.end + LATE):
            continue
        if not wards or not touched or wards & touched:
            return True
    return False


def latencies(es: Any, indices: Indices, since: datetime) -> list[str]:
    """Seconds from the end of each anomaly alert's bucket to the alert's creation, by bucket
    length (the live streaming detector's 5 minutes, the 15-minute model's checks)."""
    query = {"bool": {"filter": [
        {"term": {"detector": "anomaly"}},
        {"range": {"@timestamp": {"gte": since.isoformat()}}},
    ]}}  # fmt: skip
    hits = es.search(index=indices.alerts, query=query, size=10000)["hits"]["hits"]
    by_bucket: dict[int, list[float]] = {}
    for h in hits:
        doc = h["_source"]
        start, end = (datetime.fromisoformat(doc["window"][k]) for k in ("start", "end"))
        late = (datetime.fromisoformat(doc["@timestamp"]) - end).total_seconds()
        by_bucket.setdefault(int((end - start).total_seconds() // 60), []).append(late)
    rows = [
        "| anomaly alerts, bucket | alerts | after the bucket's end: median | p95 | max |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for minutes, values in sorted(by_bucket.items()):
        p50, p95 = percentile(values, 50), percentile(values, 95)
        rows.append(
            f"| {minutes} min | {len(values)} | {p50:.0f} s | {p95:.0f} s | {max(values):.0f} s |"
        )
    return rows if by_bucket else ["No anomaly alert in the run."]


def warm_up(log: Path) -> str:
    """The live detector's first warm-up in the worker's log: from the first warming line (or
    the worker's first line) to the line saying every province alerts."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    stamp = re.compile(r"^(\d{4}-\d\d-\d\dT\S+)")
    first = next((m.group(1) for x in lines if (m := stamp.match(x))), None)
    done = next((x for x in lines if "live anomaly warm-up done" in x), None)
    if first is None or done is None or (m := stamp.match(done)) is None:
        return "the live detector's first warm-up: not finished in the worker's log"
    took = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S%z") - datetime.strptime(
        first, "%Y-%m-%dT%H:%M:%S%z"
    )
    provinces = re.search(r"all (\d+) provinces", done)
    return (
        f"the live detector's first warm-up: every province alerting {took} after the worker's "
        f"first log line ({m.group(1)}; {provinces.group(1) if provinces else '?'} provinces, "
        "warmed a few at a time between live ticks)"
    )


def main() -> None:
    args = _args()
    since = (
        datetime.fromisoformat(args.since)
        if args.since
        else datetime.fromtimestamp(os.path.getmtime(args.scenarios), UTC)
    )
    found = scenarios.load(args.scenarios, catalogue(), since)
    for origin in args.origin:
        found += scenarios.load(args.scenarios, catalogue(), datetime.fromisoformat(origin))
        since = min(since, datetime.fromisoformat(origin))
    settings = load_settings()
    es = make_client(settings)
    indices = Indices(settings.index_prefix)
    query = {"range": {"incident.created": {"gte": since.isoformat()}}}
    hits = es.search(index=indices.incidents, query=query, size=10000)["hits"]["hits"]
    docs = [h["_source"] for h in hits]
    started = [x for x in found if x.start <= datetime.now(UTC)]
    anomaly = [d for d in docs if "anomaly" in (d["incident"].get("detectors") or [])]
    severe = [d for d in docs if d["incident"].get("severity") in SEVERE]
    false_anomaly = [d for d in anomaly if not explained(d, started)]
    false_red = [d for d in severe if not explained(d, started)]
    now = datetime.now(UTC)
    by_kind = Counter(x.kind.value for x in started)
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items()))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    out = [
        f"## Run {now:%Y-%m-%d %H:%M} UTC",
        "",
        f"Run {now:%Y-%m-%d %H:%M} UTC, `.venv/bin/python bench/demo_false_red.py` over the demo's "
        f"incidents created since {since:%Y-%m-%d %H:%M:%S} UTC ({(now - since).seconds // 60} "
        f"min of demo), load average {load} (2 cores, shared). {args.note}",
        "",
        f"Scenarios started by now: {len(started)} in "
        f"{len({x.where.province.code for x in started})} provinces "
        f"({kinds}). An incident is explained when a scenario at its province (and commune, "
        f"when both name one) ran when it was first seen (from {EARLY} before its start to "
        f"{LATE} after its end).",
        "",
        "| check | incidents | outside any scenario |",
        "| --- | ---: | ---: |",
        f"| all incidents | {len(docs)} | {sum(not explained(d, started) for d in docs)} |",
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
    out += ([""] if out[-1] else []) + [*latencies(es, indices, since), ""]
    if args.worker_log is not None:
        out += [f"- {warm_up(args.worker_log)}", ""]
    old = args.report.read_text(encoding="utf-8") if args.report.exists() else ""
    if old.startswith(TITLE):
        old = old[len(TITLE) :].lstrip("\n")
    if old and not old.startswith("## "):
        old = "## Earlier run\n\n" + old
    args.report.write_text("\n".join([TITLE, "", *out, old]).rstrip("\n") + "\n", encoding="utf-8")
    print("\n".join(out))


if __name__ == "__main__":
    main()
