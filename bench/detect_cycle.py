"""Benchmark of the Sigma engine: detection cycle time for 50/200/500 rules (``_msearch`` next to
one query per rule, same run) on an index of millions of events, and event-to-alert latency
under live simulated traffic at the default interval.

One command, one report (``bench/reports/detect-cycle.md``)::

    SOC_ES_URL=http://127.0.0.1:9250 .venv/bin/python bench/detect_cycle.py
    .venv/bin/python bench/detect_cycle.py --events 500000 --live-minutes 2   # quicker

It writes into a fresh index prefix (``detbench-<time>``) and deletes it afterwards unless
``--keep``; ``--reuse PREFIX`` skips loading when a kept prefix already holds the events.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from elasticsearch import Elasticsearch

from detectors.base import Window, floor, iso
from detectors.sigma.compiler import load_rules
from detectors.sigma.models import Rule
from detectors.sigma.runner import Engine
from detectors.sigma.search import Finding, Tuning, body, findings, split
from soc import timeutil
from soc.config import load_settings
from soc.es.client import ensure_elasticsearch, make_client
from soc.es.indices import Indices
from soc.es.templates import setup, teardown
from soc.localities import catalogue

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "bench" / "reports" / "detect-cycle.md"
SERVICES = ["web-portal", "national-portal", "one-stop-shop", "vneid", "otp-gateway"]
AGENTS = ["Mozilla/5.0 (Windows NT 10.0) Chrome/130.0", "Mozilla/5.0 (Android 14) Mobile",
          "sqlmap/1.8", "Nikto/2.5", "curl/8.5"]  # fmt: skip


# ----------------------------------------------------------------------------- data
def _event(rng: random.Random, at: datetime, provinces: list[str]) -> dict[str, Any]:
    service = rng.choice(SERVICES)
    ev: dict[str, Any] = {
        "@timestamp": iso(at),
        "event": {"kind": "event", "ingested": iso(at + timedelta(seconds=rng.random() * 3))},
        "service": {"name": service},
        "locality": {"province": {"code": rng.choice(provinces)}},
        "source": {"ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"},
        "user": {"name": f"citizen{rng.randrange(200000)}"},
    }
    if service in ("vneid", "otp-gateway"):
        action = "login" if service == "vneid" else rng.choice(["otp-verify", "otp-send"])
        ev["event"].update(category=["authentication"], action=action,
                           outcome="failure" if rng.random() < 0.08 else "success")  # fmt: skip
        ev["error"] = {"code": f"e{rng.randrange(8)}"}
    else:
        status = rng.choices([200, 302, 401, 403, 404, 500, 503], [80, 5, 3, 3, 5, 2, 2])[0]
        ev["event"].update(category=["web"], outcome="failure" if status >= 400 else "success")
        ev["http"] = {"request": {"method": "GET"}, "response": {"status_code": status}}
        ev["url"] = {"path": f"/p/{rng.randrange(500)}", "query": f"id={rng.randrange(10**6)}"}
        ev["user_agent"] = {"original": rng.choices(AGENTS, [60, 35, 1, 1, 3])[0]}
    return ev


def load(es: Elasticsearch, indices: Indices, count: int, end: datetime, days: int) -> float:
    """Bulk-load ``count`` events spread over ``days`` before ``end``; return events/second."""
    rng = random.Random(5)
    provinces = [p.code for p in catalogue().provinces]
    span = days * 86400.0
    began = time.monotonic()
    batch: list[bytes] = []
    for number in range(count):
        at = end - timedelta(seconds=span * (number / count))
        doc = _event(rng, at, provinces)
        batch.append(orjson.dumps({"create": {"_index": indices.events_for(at)}}))
        batch.append(orjson.dumps(doc))
        if len(batch) >= 10000:
            _flush(es, batch)
    _flush(es, batch)
    es.indices.refresh(index=indices.events)
    return count / (time.monotonic() - began)


def _flush(es: Elasticsearch, batch: list[bytes]) -> None:
    if batch:
        # Pre-serialised NDJSON: the client accepts bytes though its stubs say mappings.
        payload = b"\n".join(batch) + b"\n"
        answer = es.options(request_timeout=300).bulk(operations=payload)  # type: ignore[arg-type]
        if answer["errors"]:
            raise SystemExit(f"bulk errors: {answer['items'][0]}")
        batch.clear()


# ----------------------------------------------------------------------------- rules
PLAIN = """title: Bench plain {i}
id: 00000000-0000-4000-8000-{i:012d}
name: bench_plain_{i}
status: test
description: synthetic
logsource:
  category: webserver
detection:
  sel:
    c-useragent|contains: '{token}'
    sc-status: {status}
  condition: sel
falsepositives: [bench]
level: low
"""
DISTINCT = """title: Bench distinct {i}
id: 00000000-0000-4000-b000-{i:012d}
name: bench_distinct_{i}
status: test
description: synthetic
logsource:
  category: webserver
detection:
  agent:
    c-useragent|contains: '{token}'
  query:
    cs-uri-query|contains: 'id={i}'
  status:
    sc-status: {status}
  condition: (agent or query) and status
falsepositives: [bench]
level: low
"""
CORR = """title: Bench base {i}
id: 00000000-0000-4000-9000-{i:012d}
name: bench_base_{i}
status: test
description: synthetic
logsource:
  product: soc
  service: {service}
detection:
  sel:
    event.outcome: failure
    error.code: e{code}
  condition: sel
falsepositives: [bench]
level: low
"""
CORR_RULE = """title: Bench correlation {i}
id: 00000000-0000-4000-a000-{i:012d}
name: bench_corr_{i}
status: test
description: synthetic
correlation:
  type: event_count
  rules: [bench_base_{i}]
  group-by: [{group}]
  timespan: 5m
  condition:
    gte: {threshold}
falsepositives: [bench]
level: medium
"""


def make_rules(count: int, folder: Path, mix: str = "noisy") -> list[Rule]:
    """``count`` runnable rules: three plain rules for each correlation, compiled for real.

    ``noisy``: plain rules over 7 user-agent words x 5 statuses (thousands of findings per
    cycle; rules share their parts). ``distinct``: every plain rule looks for a word of its own
    (``contains`` on the user agent and the URL query, as real rules differ) and is mostly quiet;
    correlations as in ``noisy``."""
    tokens = ["sqlmap", "nikto", "curl", "mozilla", "android", "chrome", "windows"]
    for i in range(count):
        if mix == "distinct" and i % 4 != 3:
            token = f"{tokens[i % len(tokens)]}-{i}x"
            status = [200, 401, 403, 404, 500][i % 5]
            text = DISTINCT.format(i=i, token=token, status=status)
            (folder / f"p{i}.yml").write_text(text, encoding="utf-8")
            continue
        if i % 4 == 3:
            (folder / f"b{i}.yml").write_text(
                CORR.format(i=i, service=["vneid", "otp-gateway"][i % 2], code=i % 8),
                encoding="utf-8",
            )
            (folder / f"c{i}.correlation.yaml").write_text(CORR_RULE.format(
                i=i, group=["user.name", "source.ip", "locality.province.code"][i % 3],
                threshold=3 + i % 20), encoding="utf-8")  # fmt: skip
        else:
            (folder / f"p{i}.yml").write_text(PLAIN.format(
                i=i, token=tokens[i % len(tokens)], status=[200, 401, 403, 404, 500][i % 5]),
                encoding="utf-8")  # fmt: skip
    loaded = load_rules(folder)
    if loaded.errors:
        raise SystemExit(f"bench rules failed: {loaded.errors[0]}")
    assert len(loaded.runnable) == count
    return list(loaded.runnable)


# ----------------------------------------------------------------------------- cycle
def cycle(es: Elasticsearch, indices: Indices, rules: list[Rule], window: Window, repeat: int
          ) -> tuple[float, float, int]:  # fmt: skip
    """Median seconds of one detection cycle: all rules via ``_msearch``, then one by one; and
    the findings of a cycle (how noisy the rule mix is)."""
    engine = Engine(es, indices, rules)
    engine.request_cache = False  # every production window is new: no cache to hit
    plan = [(r, window, Tuning()) for r in rules]
    msearch, single = [], []
    for _ in range(repeat + 1):  # the first round warms up and is not counted
        began = time.monotonic()
        outcomes = engine.evaluate(plan)
        msearch.append(time.monotonic() - began)
        assert not [o for o in outcomes if o.error]
        found = sum(len(o.findings) for o in outcomes)
        began = time.monotonic()
        answers = [es.search(index=indices.events, body=body(rule, w, tuning, engine.options),
                             request_cache=False, ignore_unavailable=True)
                   for rule, w, tuning in plan]  # fmt: skip
        single.append(time.monotonic() - began)
    # The shared searches must find exactly what each rule's own aggregations find.
    for (rule, w, tuning), outcome, answer in zip(plan, outcomes, answers, strict=True):
        alone = findings(rule, w, tuning, split([rule], answer.body)[0])
        if _shape(alone) != _shape(outcome.findings):
            raise SystemExit(f"{rule.id}: the cycle's findings differ from the rule's own search")
    return statistics.median(msearch[1:]), statistics.median(single[1:]), found


def _shape(found: Sequence[Finding]) -> list[tuple[Any, ...]]:
    return sorted((f.window.start, sorted(f.group.items()), f.count) for f in found)


# ----------------------------------------------------------------------------- latency
def live_latency(es: Elasticsearch, indices: Indices, minutes: float, tick: float
                 ) -> tuple[list[float], int]:  # fmt: skip
    """Simulated traffic (20 events/s, one scanner request every ~3 s) while the shipped rules
    run as ``soc detect`` runs them (the settings' settle and early firing); latency = alert
    written - the first scanner event of its (window, province), once per alert."""
    settings = load_settings()
    rules = list(load_rules().runnable)
    engine = Engine(es, indices, rules, settle=timedelta(seconds=settings.detect_settle),
                    early=settings.detect_early)  # fmt: skip
    stop = threading.Event()
    attacks: list[tuple[datetime, str]] = []
    rng = random.Random(9)
    provinces = [p.code for p in catalogue().provinces]

    def traffic() -> None:
        while not stop.is_set():
            now = datetime.now(UTC)
            docs = [_event(rng, now, provinces) for _ in range(20)]
            for doc in docs:
                doc["event"]["ingested"] = iso(now)
            if rng.random() < 0.33:
                scan = _event(rng, now, provinces)
                scan.update(service={"name": "web-portal"}, user_agent={"original": "sqlmap/1.8"})
                scan["event"].update(category=["web"], ingested=iso(now))
                scan["http"] = {"request": {"method": "GET"}, "response": {"status_code": 200}}
                docs.append(scan)
                attacks.append((now, scan["locality"]["province"]["code"]))
            lines = []
            for doc in docs:
                lines += [orjson.dumps({"create": {"_index": indices.events_for(now)}}),
                          orjson.dumps(doc)]  # fmt: skip
            _flush(es, lines)
            stop.wait(1.0)

    writer = threading.Thread(target=traffic, daemon=True)
    engine.tick()  # first checkpoint: the live run starts now
    writer.start()
    deadline = time.monotonic() + minutes * 60
    while time.monotonic() < deadline:
        time.sleep(tick)
        engine.tick()
    stop.set()
    writer.join()
    time.sleep(70)  # let the last windows close and be evaluated
    engine.tick()
    es.indices.refresh(index=indices.alerts)
    hits = es.search(
        index=indices.alerts,
        size=5000,
        query={"term": {"rule.name": "Vulnerability scanner against a public portal"}},
    )
    latencies = []
    for hit in hits["hits"]["hits"]:
        a = hit["_source"]
        start, end = (timeutil.parse(a["window"][k]) for k in ("start", "end"))
        province = a.get("locality", {}).get("province", {}).get("code")
        first = min((at for at, code in attacks if start <= at < end and code == province),
                    default=None)  # fmt: skip
        if first is not None:
            written = timeutil.parse(a["@timestamp"])
            latencies.append((written - first).total_seconds())
    return latencies, len(attacks)


# ----------------------------------------------------------------------------- report
def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--sizes", default="50,200,500")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mixes", default="noisy,distinct", help="Rule mixes (make_rules).")
    parser.add_argument("--live-minutes", type=float, default=5.0)
    parser.add_argument(
        "--tick",
        type=float,
        default=load_settings().detect_tick,
        help="Scheduler tick, seconds (default: SOC_DETECT_TICK).",
    )
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--note", default="", help="A line added to the report.")
    parser.add_argument("--reuse", help="Index prefix of a kept run holding the events.")
    args = parser.parse_args()
    settings = load_settings()
    ensure_elasticsearch(settings)
    es = make_client(settings)
    prefix = args.reuse or f"detbench-{datetime.now(UTC):%Y%m%d%H%M%S}"
    indices = Indices(prefix)
    setup(es, indices)
    end = floor(datetime.now(UTC), timedelta(minutes=1))
    rate = 0.0
    try:
        if not args.reuse:
            print(f"loading {args.events:,} events into {prefix}-events-* …", flush=True)
            rate = load(es, indices, args.events, end, args.days)
        total = es.count(index=indices.events)["count"]
        newest = es.search(index=indices.events, size=1, sort=[{"@timestamp": "desc"}])
        last = timeutil.parse(newest["hits"]["hits"][0]["_source"]["@timestamp"])
        window = Window(floor(last, timedelta(minutes=1)) - timedelta(minutes=1),
                        floor(last, timedelta(minutes=1)))  # fmt: skip
        rows = []
        for mix in args.mixes.split(","):
            for size in [int(x) for x in args.sizes.split(",")]:
                with tempfile.TemporaryDirectory() as folder:
                    rules = make_rules(size, Path(folder), mix)
                m, s1, found = cycle(es, indices, rules, window, args.repeat)
                rows.append((mix, size, m, s1, found))
                print(f"{mix} {size} rules: msearch {m:.3f}s, one query per rule {s1:.3f}s, "
                      f"{found} findings", flush=True)  # fmt: skip
        latencies: list[float] = []
        attacks = 0
        if args.live_minutes > 0:
            print(f"live traffic for {args.live_minutes} min …", flush=True)
            live = Indices(f"{prefix}-live")
            setup(es, live)
            latencies, attacks = live_latency(es, live, args.live_minutes, args.tick)
        _report(args, total, rate, window, rows, latencies, attacks)
    finally:
        if not args.keep:
            teardown(es, prefix)
    print(f"report: {REPORT}")


def _report(args: argparse.Namespace, total: int, rate: float, window: Window,
            rows: list[tuple[str, int, float, float, int]], latencies: list[float], attacks: int
            ) -> None:  # fmt: skip
    load = os.getloadavg()
    settings = load_settings()
    lines = [
        "# Sigma engine: detection cycle and event-to-alert latency",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
        f"({platform.processor() or platform.machine()}), Python {platform.python_version()}; "
        "Elasticsearch single node on the same machine (shared with the other engineers' work).",
        f"Command: `.venv/bin/python bench/detect_cycle.py --events {args.events} "
        f"--sizes {args.sizes} --mixes {args.mixes} --repeat {args.repeat} "
        f"--live-minutes {args.live_minutes}`; load average at the end {load[0]:.1f} / "
        f"{load[1]:.1f} / {load[2]:.1f} (1/5/15 min)",
        "",
        f"- events in the index: {total:,} over {args.days} daily indices"
        + (f" (loaded at {rate:,.0f} events/s)" if rate else ""),
        f"- window: one minute, {window.start:%Y-%m-%d %H:%M} to {window.end:%H:%M} UTC; "
        "shard request cache off; median of "
        f"{args.repeat} rounds after one warm-up",
        "- rule mix: 3 plain rules (webserver query_string) per event_count correlation "
        "(date_range + terms over a 5-minute timespan); *noisy*: plain rules over 7 user-agent "
        "words x 5 statuses (35 distinct queries), thousands of findings per cycle; "
        "*distinct*: every plain rule looks for words of its own (user agent or URL query, "
        "and a status), mostly quiet",
        "- every rule's findings of the `_msearch` cycle (window, group, count) were checked "
        "equal to those of its own search (the *one query per rule* column: per-rule "
        "aggregations) in this run",
        "",
        "| mix | rules | `_msearch` cycle (s) | one query per rule (s) | msearch vs 50 rules "
        "| findings per cycle |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    bases = {mix: m for mix, size, m, _, _ in reversed(rows)}
    for mix, size, m, s1, found in rows:
        ratio = m / bases[mix] if bases[mix] else 0
        lines.append(f"| {mix} | {size} | {m:.3f} | {s1:.3f} | {ratio:.2f}x | {found} |")
    if latencies:
        q = statistics.quantiles(latencies, n=100)
        lines += [
            "",
            f"Event-to-alert latency (scanner rule, default 1-minute interval, settle "
            f"{settings.detect_settle:g} s, tick {args.tick:g} s, early firing "
            f"{'on' if settings.detect_early else 'off'}, live traffic ~20 events/s for "
            f"{args.live_minutes} min; from the first scanner event of each alert's window and "
            f"province to the alert): p50 {statistics.median(latencies):.1f} s, p95 "
            f"{q[94]:.1f} s, max {max(latencies):.1f} s over {len(latencies)} alerts "
            f"({attacks} attack events).",
        ]
    lines += ["", "Goal: 500 rules within 3x the time of 50 rules (`_msearch` column).", ""]
    if args.note:
        lines += [args.note, ""]
    REPORT.write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
