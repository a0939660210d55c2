"""Time to detect by any detector on the anomaly scenario bench (issue 18): what a user sees
first, a Sigma rule's alert or the anomaly model's, per scenario and per kind.

``bench/anomaly.py`` measures the anomaly engine alone over its kept events (``--keep``; the
shared node keeps ``qbench-1204-events-*``) and its 17 scenarios (bench/anomaly-scenarios.yaml).
This script runs every alerting rule of ``rules/`` over the same events and scored days, each
rule over its own interval-aligned windows (1 minute for every shipped rule: the windows
``soc detect`` settles; its early firing only raises the same alert, under the same window,
seconds after its events instead of at the window's end), with the settings' look-backs, into
its own prefix (``--prefix``: alerts and state only; the events are searched where they are,
as ``rules/sources.yaml`` points rules at other indices, so nothing is aliased or copied). It
then judges the Sigma alerts, the kept anomaly alerts of the latest anomaly run
(``--anomaly-prefixes``, the ones bench/reports/anomaly.md's top section names) and both
together with ``soc simulate evaluate``'s matcher and ``bench/anomaly_combine.py``'s grace::

    SOC_ES_URL=http://127.0.0.1:9250 .venv/bin/python bench/scenario_ttd.py \\
      --anomaly-prefixes qramp1,qrstream

Time to detect = the end of the first matching alert's window minus the scenario's start (as
for the anomaly bench); Sigma alerts that match no scenario are its false alerts. Writes
``bench/reports/scenario-ttd.md`` (``--report``). ``--reuse`` judges the Sigma alerts kept
from an earlier run under ``--prefix`` again (a newer anomaly run, same rules). It needs the
kept events, so ``make bench`` does not run it. Never deletes anything but ``<prefix>-*``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from anomaly_combine import anomaly_alerts, scored  # bench/ is on sys.path as a script
from elasticsearch import Elasticsearch
from rules_scenarios import run_windows

from detectors.sigma import service
from detectors.sigma.models import Rule
from detectors.sigma.runner import Engine
from soc.config import load_settings
from soc.es.client import ensure_elasticsearch
from soc.es.indices import Indices
from soc.es.templates import setup
from soc.simulate.evaluate import Evaluation, Outcome, SeenAlert, evaluate, fetch_alerts
from soc.simulate.models import Label

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "bench" / "reports" / "scenario-ttd.md"
_MIN = timedelta(minutes=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", default="qbench-1204-events-*", help="the kept events")
    parser.add_argument("--prefix", default="qttd", help="where the Sigma alerts go")
    parser.add_argument("--anomaly-prefixes", default="qramp1,qrstream")
    parser.add_argument("--end", default="2026-11-25T00:00:00+07:00")
    parser.add_argument("--score-days", type=int, default=4)
    parser.add_argument("--grace-minutes", type=float, default=10.0)
    parser.add_argument("--hours", type=float, help="only the first hours (a smoke run)")
    parser.add_argument("--reuse", action="store_true", help="judge the kept Sigma alerts")
    parser.add_argument("--report", type=Path, default=REPORT)
    args = parser.parse_args()
    began_at, load_before = datetime.now(UTC), os.getloadavg()
    start, end, labels = scored(args.end, args.score_days)
    if args.hours:
        end = start + timedelta(hours=args.hours)
    settings = load_settings()
    es, _ = ensure_elasticsearch(settings)
    indices = Indices(args.prefix, (args.events,))
    rules = list(service.load(settings=settings).runnable)
    searches, seconds = 0, 0.0
    if not args.reuse:
        # An earlier run's alerts and state, by their concrete names: never a pattern, which
        # could reach the kept events through an alias.
        es.options(ignore_status=404).indices.delete(index=f"{indices.alerts},{indices.state}")
        setup(es, indices)
        began = time.monotonic()
        engine = Engine(es, indices, rules, options=service.options(settings))
        day = start
        while day < end:  # a day at a time: progress, and a bounded plan
            upto = min(day + timedelta(days=1), end)
            searches += run_windows(engine, day, upto, chunk=10 * len(rules))
            print(f"rules over {day:%m-%d %H:%M}-{upto:%H:%M} UTC: {searches} searches, "
                  f"{time.monotonic() - began:.0f} s", flush=True)  # fmt: skip
            day = upto
        seconds = time.monotonic() - began
        es.indices.refresh(index=indices.alerts)
    # Plain rules write detector "sigma", correlations "correlation": both are Sigma rules.
    sigma = [a for a in fetch_alerts(es, indices, start, end) if a.detector != "anomaly"]
    anomaly = anomaly_alerts(es, args.anomaly_prefixes.split(","), start, end)
    grace = timedelta(minutes=args.grace_minutes)
    judged = {name: evaluate(labels, found, grace=grace)
              for name, found in (("sigma", sigma), ("anomaly", anomaly),
                                  ("either", sigma + anomaly))}  # fmt: skip
    lines = _report(args, es, indices, rules, labels, sigma + anomaly, judged, (start, end),
                    (began_at, load_before, searches, seconds))  # fmt: skip
    args.report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def first_alerts(result: Evaluation, alerts: Sequence[SeenAlert]) -> dict[str, SeenAlert]:
    """Per scenario, its first matching alert (earliest window end, as the time to detect)."""
    by_id = {a.id: a for a in alerts}
    return {o.scenario_id: min((by_id[i] for i in o.alerts), key=lambda a: (a.end, a.rule))
            for o in result.outcomes if o.alerts}  # fmt: skip


def _minutes(outcome: Outcome | None) -> str:
    if outcome is None or outcome.time_to_detect is None:
        return "missed"
    return f"{outcome.time_to_detect / _MIN:g}"


def _median(outcomes: Sequence[Outcome]) -> str:
    times = [o.time_to_detect / _MIN for o in outcomes if o.time_to_detect is not None]
    if not times:
        return "-"
    shown = f"{statistics.median(times):g}"
    return shown if len(times) == len(outcomes) else f"{shown} ({len(times)} of {len(outcomes)})"


def _report(
    args: argparse.Namespace, es: Elasticsearch, indices: Indices, rules: Sequence[Rule],
    labels: Sequence[Label], alerts: Sequence[SeenAlert], judged: dict[str, Evaluation],
    period: tuple[datetime, datetime], run: tuple[datetime, tuple[float, ...], int, float],
) -> list[str]:  # fmt: skip
    (start, end), (began_at, load_before, searches, seconds) = period, run
    load = os.getloadavg()
    commit, detection = (
        subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h", "--", *paths],
                       capture_output=True, text=True, check=False).stdout.strip()
        for paths in ([], ["rules", "detectors/sigma"])
    )  # fmt: skip
    outcomes = {name: {o.scenario_id: o for o in res.outcomes} for name, res in judged.items()}
    firsts = {name: first_alerts(res, alerts) for name, res in judged.items()}
    begins = {x.scenario_id: x.start for x in labels}
    for x in labels:
        begins[x.scenario_id] = min(begins[x.scenario_id], x.start)
    either = judged["either"]
    by_id = {a.id: a for a in alerts}
    out = [
        "# Time to detect by any detector on the anomaly scenario bench (`bench/scenario_ttd.py`)",
        "",
        f"Run {began_at:%Y-%m-%d %H:%M}-{datetime.now(UTC):%H:%M} UTC on {platform.node()} "
        f"({os.cpu_count()} cores, shared), at `{commit}` (rules and Sigma engine as of "
        f"`{detection}`); load average "
        f"{load_before[0]:.1f} / {load_before[1]:.1f} / {load_before[2]:.1f} at the start, "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end. Events: `{args.events}` "
        f"(the anomaly bench's kept events); scored {start:%Y-%m-%d %H:%M} - "
        f"{end:%Y-%m-%d %H:%M} UTC (local Saturday to Tuesday, Tuesday a holiday), "
        f"{len(either.outcomes)} scenarios; grace {args.grace_minutes:g} min.",
        "",
        f"- Sigma: the {len(rules)} alerting rules of `rules/` (the others feed correlations), "
        "each over its own 1-minute windows evaluated for good, "
        + (f"{searches:,} (rule, window) searches in {seconds:.0f} s, alerts in "
           f"`{args.prefix}-alerts`" if searches else
           f"the alerts kept in `{args.prefix}-alerts` (`--reuse`), written "
           f"{_written(es, indices)} UTC by an earlier run")
        + ". `soc detect`'s early firing raises the same alert (same window) within a tick "
        "(5 s) of its events, so a Sigma time below is at most a minute later than live.",
        f"- Anomaly: the kept alerts of `{args.anomaly_prefixes}` (the latest scenario-bench run, "
        "bench/reports/anomaly.md), unchanged.",
        "",
        "| detector | alerts | matching a scenario | false | precision | scenarios detected "
        "| median time to detect |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]  # fmt: skip
    for name, res in judged.items():
        found = sum(o.detected for o in res.outcomes)
        out.append(
            f"| {name} | {res.alerts_total:,} | {res.alerts_total - len(res.false_alerts):,} | "
            f"{len(res.false_alerts):,} | {_precision(res)} | {found} of {len(res.outcomes)} | "
            f"{_median(res.outcomes)} min |"
        )
    fast = sum(1 for o in either.outcomes if o.time_to_detect is not None
               and o.time_to_detect <= 10 * _MIN)  # fmt: skip
    out += [
        "",
        f"Within 10 minutes by either: **{fast} of {len(either.outcomes)}** scenarios.",
        "",
        "## Per kind: median time to detect (minutes)",
        "",
        "| kind | scenarios | Sigma | anomaly | either | <= 10 min (either) |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    kinds = sorted({o.kind for o in either.outcomes})
    for kind in kinds:
        group = {n: [o for o in outcomes[n].values() if o.kind == kind] for n in judged}
        times = [o.time_to_detect / _MIN for o in group["either"] if o.time_to_detect is not None]
        met = len(times) == len(group["either"]) and statistics.median(times) <= 10
        out.append(f"| {kind} | {len(group['either'])} | {_median(group['sigma'])} | "
                   f"{_median(group['anomaly'])} | **{_median(group['either'])}** | "
                   f"{'met' if met else '**not met**'} |")  # fmt: skip
    out += [
        "",
        "## Per scenario (minutes after its start; the first alert's rule and window, UTC)",
        "",
        "After each first alert: how many alerts of its rule match the scenario (x), and how many "
        "of the same rule at the same province and service match no scenario over the scored days "
        "(outside): a first alert of a rule that fires there anyway may be a chance match.",
        "",
        "| scenario | kind | start (UTC) | Sigma | first Sigma alert | anomaly | first anomaly "
        "alert | either | first by |",
        "| --- | --- | --- | ---: | --- | ---: | --- | ---: | --- |",
    ]
    for sid in sorted(outcomes["either"], key=lambda s: begins[s]):
        cells = []
        for name in ("sigma", "anomaly"):
            alert, outcome = firsts[name].get(sid), outcomes[name].get(sid)
            shown = "-"
            if alert is not None and outcome is not None:
                shown = (f"{alert.rule} ({alert.province}) {alert.start:%H:%M}-{alert.end:%H:%M}"
                         + _support(alert, outcome, judged[name], by_id))  # fmt: skip
            cells += [_minutes(outcome), shown]
        first = firsts["either"].get(sid)
        who = "-" if first is None else "anomaly" if first.detector == "anomaly" else "sigma"
        if cells[0] == cells[2] != "missed":
            who = "both"
        row = [sid, outcomes["either"][sid].kind, f"{begins[sid]:%a %H:%M}", *cells,
               f"**{_minutes(outcomes['either'][sid])}**", who]  # fmt: skip
        out.append("| " + " | ".join(row) + " |")
    sigma = [a for a in alerts if a.detector != "anomaly"]
    out += _false_section(judged["sigma"], isolated(sigma))
    return out


def _written(es: Elasticsearch, indices: Indices) -> str:
    """When the kept alerts were written (their ``@timestamp`` is the run's clock)."""
    aggs = {"first": {"min": {"field": "@timestamp"}}, "last": {"max": {"field": "@timestamp"}}}
    found = es.search(index=indices.alerts, size=0, aggs=aggs)["aggregations"]
    first, last = (str(found[k].get("value_as_string", "?")) for k in ("first", "last"))
    return f"{first[:16].replace('T', ' ')}-{last[11:16]}"


def _support(
    first: SeenAlert, outcome: Outcome, result: Evaluation, by_id: dict[str, SeenAlert]
) -> str:
    """How much the first alert stands for the scenario: its rule's alerts that match the
    scenario, and the same rule's alerts at the same province and service that match no scenario
    over the scored days (a rule that fires there anyway may have matched by chance)."""
    mine = sum(1 for i in outcome.alerts if by_id[i].rule == first.rule)
    noise = sum(
        1
        for a in result.false_alerts
        if (a.rule, a.province, a.service) == (first.rule, first.province, first.service)
    )
    return f"; x{mine} in it, {noise} outside"  # fmt: skip


def isolated(alerts: Sequence[SeenAlert]) -> set[str]:
    """The ids of the alerts that no alert of the same rule and place (province, ward, service)
    touches: none in the window just before or just after (a single failed check, not a run)."""
    starts: dict[tuple[str, str | None, str | None, str | None], set[datetime]] = {}
    for a in alerts:
        starts.setdefault((a.rule, a.province, a.ward, a.service), set()).add(a.start)
    return {a.id for a in alerts
            if not starts[(a.rule, a.province, a.ward, a.service)]
            & {a.start - (a.end - a.start), a.end}}  # fmt: skip


def _false_section(
    result: Evaluation, alone: set[str], *, rows: int = 12, each: int = 30
) -> list[str]:
    """Sigma's alerts matching no scenario: per rule, how many are ``alone`` (:func:`isolated`);
    the ``rows`` largest groups by rule, province and service, and one line per alert of every
    rule with at most ``each`` of them."""
    groups: dict[tuple[str, str, str], list[SeenAlert]] = {}
    for a in result.false_alerts:
        groups.setdefault((a.rule, a.province or "-", a.service or "-"), []).append(a)
    ranked = sorted(groups.items(), key=lambda kv: -len(kv[1]))
    by_rule = result.false_by_rule()
    lone = Counter(a.rule for a in result.false_alerts if a.id in alone)
    named = [f"{rule} **{n:,}** ({lone[rule]:,})" for rule, n in by_rule.items()]
    out = [
        "",
        f"## Sigma alerts outside any scenario: {len(result.false_alerts):,}",
        "",
        "By rule (of which isolated: no alert of the same rule and place in the window before "
        "or after): " + (", ".join(named) or "none") + ".",
    ]
    if groups:
        out += ["", f"Largest groups ({min(rows, len(ranked))} of {len(ranked)}):", "",
                "| rule | province | service | alerts | first - last window (UTC) | wards |",
                "| --- | --- | --- | ---: | --- | ---: |"]  # fmt: skip
    for (rule, province, svc), items in ranked[:rows]:
        wards = {a.ward for a in items if a.ward}
        out.append(f"| {rule} | {province} | {svc} | {len(items)} | "
                   f"{min(a.start for a in items):%a %H:%M} - "
                   f"{max(a.end for a in items):%a %H:%M} | {len(wards)} |")  # fmt: skip
    few = [a for a in result.false_alerts if by_rule[a.rule] <= each]
    if few:
        out += ["", f"Every false alert of the rules with at most {each} (UTC):", ""]
        out += [f"- {a.rule}: province {a.province} ward {a.ward or '-'} {a.service} "
                f"{a.start:%a %m-%d %H:%M}-{a.end:%H:%M}"
                for a in sorted(few, key=lambda a: (a.rule, a.start))]  # fmt: skip
    return out


def _precision(result: Evaluation) -> str:
    return "-" if result.precision is None else f"{result.precision:.3f}"


if __name__ == "__main__":
    main()
