"""Benchmark of ``soc rules backtest``: the few-search backtest next to one search per window
(how it worked before), same rules, same events, same run; the counts must be equal.

    SOC_ES_URL=http://127.0.0.1:9250 .venv/bin/python bench/backtest_speed.py --reuse PREFIX

``PREFIX`` is an index prefix holding events, e.g. one kept by ``bench/detect_cycle.py --keep``
(5 million events over 5 days). Writes ``bench/reports/backtest.md``; deletes nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from detectors.base import aligned_windows, parse_duration
from detectors.sigma import service
from detectors.sigma.models import Rule
from detectors.sigma.state import StateStore
from soc import timeutil
from soc.config import Settings, load_settings
from soc.es.client import make_client

REPORT = Path(__file__).resolve().parent.parent / "bench" / "reports" / "backtest.md"
RULES = ["web_scanner_user_agent", "web_access_denied_burst", "otp_brute_force_account",
         "otp_credential_stuffing"]  # fmt: skip


def per_window(settings: Settings, rule: Rule, since: timedelta, now: datetime) -> dict[str, int]:
    """The former backtest: every window its own search (``_msearch`` of 200)."""
    es = make_client(settings)
    runner = service.engine(es=es, settings=settings, rules=[rule])
    runner.options = replace(runner.options, correlation_lookback=timedelta(0))
    windows = list(aligned_windows(now - since, now, rule.interval))
    tuning = StateStore(es, runner.indices).tuning(rule.id)
    alerts: dict[str, str] = {}
    for offset in range(0, len(windows), runner.chunk):
        part = windows[offset : offset + runner.chunk]
        for outcome in runner.evaluate([(rule, w, tuning) for w in part]):
            assert outcome.error is None, outcome.error
            for alert in runner.alerts([outcome], now):
                alerts[alert.id] = alert.place.province_name if alert.place else "(no locality)"
    return dict(Counter(alerts.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reuse", required=True, help="Index prefix holding the events.")
    parser.add_argument("--since", default="5d")
    args = parser.parse_args()
    settings = load_settings(index_prefix=args.reuse)
    es = make_client(settings)
    newest = es.search(index=f"{args.reuse}-events-*", size=1, sort=[{"event.ingested": "desc"}])
    stamp = newest["hits"]["hits"][0]["_source"]["event"]["ingested"]
    now = timeutil.parse(stamp) + timedelta(minutes=1)
    since = parse_duration(args.since)
    total = es.count(index=f"{args.reuse}-events-*")["count"]
    rules = service.load(settings=settings)
    rows = []
    for name in RULES:
        rule = rules.get(name)
        began = time.monotonic()
        result = service.backtest(es=es, settings=settings, rule=rule, since=since, now=now)
        fast = time.monotonic() - began
        began = time.monotonic()
        slow_counts = per_window(settings, rule, since, now)
        slow = time.monotonic() - began
        same = dict(result.by_locality) == slow_counts
        rows.append((name, rule.kind.value, result.windows, result.alerts, fast, slow, same))
        print(f"{name}: {fast:.1f}s vs {slow:.1f}s per window, {result.alerts} alerts, "
              f"same={same}", flush=True)  # fmt: skip
    load = os.getloadavg()
    lines = [
        "# `soc rules backtest`: few searches vs one search per window",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()}, Python "
        f"{platform.python_version()}, Elasticsearch single node on the same 2-core machine "
        f"(shared; load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end).",
        f"Command: `.venv/bin/python bench/backtest_speed.py --reuse {args.reuse} "
        f"--since {args.since}`",
        "",
        f"- events: {total:,} (the detection-cycle benchmark's index); backtest over "
        f"{args.since} of 1-minute windows ending {now:%Y-%m-%d %H:%M} UTC",
        "- *per window* is how the backtest worked before: every window its own search, "
        "200 per `_msearch`; both columns in the same run, the few-search one first",
        "",
        "| rule | kind | windows | alerts | backtest (s) | per window (s) | speed-up | "
        "same counts per locality |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, kind, windows, alerts, fast, slow, same in rows:
        lines.append(f"| {name} | {kind} | {windows} | {alerts} | {fast:.1f} | {slow:.1f} | "
                     f"{slow / fast:.1f}x | {'yes' if same else '**no**'} |")  # fmt: skip
    lines += [
        "",
        "A plain rule's alerts come from paged `composite` buckets (window x province x ward) "
        "on `event.ingested`; a correlation's candidate windows from `date_range` searches of "
        "120 sub-windows each, then only the candidates (and windows with an event stamped "
        "outside what the engine's window reads) are evaluated window by window. A value_count "
        "correlation is evaluated window by window throughout: its chunks (a cardinality sketch "
        "per source address and sub-window) tripped the 512 MiB node's memory breaker.",
        "",
    ]
    REPORT.write_text("\n".join(lines), encoding="utf-8")
    print(f"report: {REPORT}")


if __name__ == "__main__":
    main()
