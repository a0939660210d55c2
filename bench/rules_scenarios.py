"""Detection quality of the volume-aware and login rules on the simulator's traffic: scenarios
detected, and alerts that match no scenario (false alerts), over days of realistic history.

One command, one report (``bench/reports/rules-scenarios.md``)::

    SOC_ES_URL=http://127.0.0.1:9250 .venv/bin/python bench/rules_scenarios.py

It backfills ``--days`` of simulated traffic for every province and commune with the demo's
scenarios (``scenarios/demo.yaml``) into a fresh index prefix (deleted afterwards unless
``--keep``), evaluates the rules over every window after the first day (the baselines need a
history) with the engine's own search path, writes their alerts, and scores them with
``soc simulate evaluate``'s matching (province, ward, service, time). Windows are
``--interval`` long instead of one minute (the sub-windows still slide every 3 minutes): fewer
searches, the same bursts.

``--rules`` and ``--meant`` choose other rules and the scenario kinds they are for;
``--baseline-rev REV`` also evaluates the same-named rules as they were at git revision REV
(``git archive``) over the same events first, and reports both side by side (``--report``)::

    .venv/bin/python bench/rules_scenarios.py --baseline-rev cbdddc0 \
      --rules otp_send_failure_carrier,national_db_lookup_failing,web_access_denied_burst \
      --meant otp_carrier_failure,credential_stuffing,web_attack,otp_brute_force \
      --report bench/reports/rules-scenarios-ratio3.md
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from elasticsearch import Elasticsearch

from detectors.base import aligned_windows, floor
from detectors.sigma.compiler import load_rules
from detectors.sigma.runner import Engine
from detectors.sigma.search import Tuning
from soc.config import load_settings
from soc.es.client import make_client
from soc.es.indices import Indices
from soc.es.templates import setup, teardown
from soc.simulate import labels as labels_file
from soc.simulate.evaluate import evaluate, fetch_alerts

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "bench" / "reports" / "rules-scenarios.md"
RULES = ("service_failure_ratio", "login_credential_stuffing", "login_brute_force_account",
         "login_account_many_ips")  # fmt: skip
#: The scenario kinds these rules are for (the others are the anomaly model's and other rules').
MEANT = {"vneid_outage", "vneid_error_storm", "oss_5xx_storm", "credential_stuffing",
         "otp_brute_force"}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=float, default=4)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--interval", type=int, default=10, help="minutes per window")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--rules", default=",".join(RULES), help="comma-separated rule names")
    parser.add_argument("--meant", default=",".join(sorted(MEANT)), help="scenario kinds")
    parser.add_argument("--baseline-rev", help="also run the rules as at this git revision")
    parser.add_argument("--report", type=Path, default=REPORT)
    parser.add_argument(
        "--reuse",
        metavar="PREFIX",
        help="evaluate over the events a --keep run left in PREFIX (no backfill)",
    )
    args = parser.parse_args()
    args.rules, args.meant = args.rules.split(","), set(args.meant.split(","))
    settings = load_settings()
    es = make_client(settings)
    prefix = args.reuse or f"rulesim-{datetime.now(UTC):%Y%m%d%H%M%S}"
    indices = Indices(prefix)
    labels = ROOT / "var" / "bench" / f"{prefix}-labels.jsonl"
    labels.parent.mkdir(parents=True, exist_ok=True)
    end = floor(datetime.strptime(prefix, "rulesim-%Y%m%d%H%M%S").replace(tzinfo=UTC),
                timedelta(hours=1))  # fmt: skip
    if args.reuse:
        es.indices.delete(index=indices.alerts, ignore_unavailable=True)
    setup(es, indices)
    try:
        began = time.monotonic()
        env = {**os.environ, "SOC_INDEX_PREFIX": prefix}
        subprocess.run(
            [str(Path(sys.executable).parent / "soc"), "simulate", "backfill", "--days",
             str(args.days), "--scale", str(args.scale), "--end", end.isoformat(),
             "--scenario", str(ROOT / "scenarios" / "demo.yaml"), "--labels", str(labels)],
            check=True, env=env,
        ) if not args.reuse else None  # fmt: skip
        loaded = time.monotonic() - began
        start = end - timedelta(days=args.days) + timedelta(days=1)
        truth = labels_file.read(labels)
        sections = []
        for rev in [args.baseline_rev, None] if args.baseline_rev else [None]:
            began = time.monotonic()
            searches = _detect(es, indices, start, end, args.interval, args.rules, rev)
            detected = time.monotonic() - began
            es.indices.refresh(index=indices.alerts)
            result = evaluate(truth, fetch_alerts(es, indices, start, end),
                              grace=timedelta(minutes=30))  # fmt: skip
            sections.append(_report(args, start, end, loaded, detected, searches, result, rev))
            es.indices.delete(index=indices.alerts)  # the next rules' alerts on their own
            setup(es, indices)
        args.report.write_text("\n".join(x for lines in sections for x in lines) + "\n", "utf-8")
    finally:
        if not args.keep:
            teardown(es, prefix)


def _detect(
    es: Elasticsearch, indices: Indices, start: datetime, end: datetime, minutes: int,
    names: list[str], rev: str | None,
) -> int:  # fmt: skip
    if rev is None:
        rules = load_rules()
    else:
        folder = Path(tempfile.mkdtemp(prefix="rules-"))
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "rules"],
                                 check=True, capture_output=True).stdout  # fmt: skip
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        rules = load_rules(folder / "rules")
    chosen = [replace(rules.get(name), interval=timedelta(minutes=minutes)) for name in names]
    return run_windows(Engine(es, indices, chosen), start, end)


def run_windows(engine: Engine, start: datetime, end: datetime, *, chunk: int = 200) -> int:
    """Evaluate each of the engine's rules over its own interval-aligned windows of
    ``[start, end)``, for good (what ``soc detect`` settles, early firing aside), window by window
    (rules over the same window share searches), and write their alerts; the number of
    (rule, window) searches. A search error stops the run."""
    plan = sorted(((rule, window, Tuning()) for rule in engine.rules
                   for window in aligned_windows(start, end, rule.interval)),
                  key=lambda item: item[1].start)  # fmt: skip
    for offset in range(0, len(plan), chunk):
        outcomes = engine.evaluate(plan[offset : offset + chunk])
        errors = [o.error for o in outcomes if o.error]
        if errors:
            raise SystemExit(errors[0])
        engine.write(engine.alerts(outcomes, datetime.now(UTC)), final=True)
    return len(plan)


def _report(args: argparse.Namespace, start: datetime, end: datetime, loaded: float,
            detected: float, searches: int, result: object,
            rev: str | None) -> list[str]:  # fmt: skip
    from soc.simulate.evaluate import Evaluation

    assert isinstance(result, Evaluation)
    load = os.getloadavg()
    meant = [o for o in result.outcomes if o.kind in args.meant]
    which = f"as at `{rev}` (the baseline)" if rev else "as in the working tree"
    rows = [f"| {o.scenario_id} | {o.kind} | {'yes' if o.detected else '**no**'} | "
            f"{o.time_to_detect.total_seconds() / 60:.1f} min |" if o.time_to_detect else
            f"| {o.scenario_id} | {o.kind} | {'yes' if o.detected else '**no**'} | |"
            for o in sorted(result.outcomes, key=lambda o: o.scenario_id)]  # fmt: skip
    recall = sum(o.detected for o in meant) / len(meant) if meant else None
    lines = [
        "# Volume-aware and login rules on simulated scenarios (`bench/rules_scenarios.py`)"
        if rev or not args.baseline_rev else "## The same events, the rules of the working tree",
        "", f"Rules {which}. Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({os.cpu_count()} "
        f"cores), Python {platform.python_version()}, load average {load[0]:.1f} / {load[1]:.1f}"
        f" / {load[2]:.1f} (shared machine). {args.days:g} days backfilled at scale "
        f"{args.scale:g} with scenarios/demo.yaml "
        f"{f'by an earlier run (--reuse {args.reuse})' if args.reuse else f'in {loaded:.0f} s'}; "
        f"rules {', '.join(args.rules)} "
        f"evaluated over {start:%Y-%m-%d %H:%M} - {end:%Y-%m-%d %H:%M} UTC ({searches} windows "
        f"of {args.interval} min) in {detected:.0f} s.", "",
        f"Alerts: **{result.alerts_total}**, matching a scenario: "
        f"{result.alerts_total - len(result.false_alerts)}; **false alerts: "
        f"{len(result.false_alerts)}** (precision {result.precision}). Recall over the scenarios "
        f"these rules are for ({', '.join(sorted(args.meant))}) that started in the evaluated "
        "days: "
        f"**{recall}**.", "",
        "| scenario | kind | detected | time to detect |", "| --- | --- | --- | ---: |", *rows,
        "", "False alerts by rule: " + (", ".join(f"{r}: {n}" for r, n in
                                               result.false_by_rule().items()) or "none"), "",
    ]  # fmt: skip
    lines += [f"- {a.rule} {a.province}/{a.ward} {a.service} {a.start:%m-%d %H:%M}"
              for a in result.false_alerts[:30]]  # fmt: skip
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
