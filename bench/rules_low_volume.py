"""Benchmark of the volume-aware rules at night volumes: a 100%-failure outage of a service in a
quiet province must be alerted within minutes, and a busy, healthy hour (3x the usual volume at
the usual failure rate) in a big city must raise nothing.

One command, one report (``bench/reports/rules-low-volume.md``)::

    SOC_ES_URL=http://127.0.0.1:9250 .venv/bin/python bench/rules_low_volume.py

What it does, in a fresh index prefix (deleted afterwards unless ``--keep``):

* history: ``--history-days`` of VNeID login events (Poisson arrivals, 0.3% timeouts, 0.2%
  server errors) for eight quiet provinces at 13, 26, 39 and 60 events an hour, and for Hà Nội
  at 600 an hour: what ``service_failure_ratio`` learns its baselines from;
* one live hour: the quiet provinces at their night rate, Hà Nội at 3x (1,800 an hour) with the
  usual failure rates; then, at ``T``, each quiet province's VNeID fails every request for 30
  minutes: four of them with timeouts only, four with 67% timeouts and 33% 502s (the outage of
  issue 18), one of each per rate;
* ``soc detect``'s engine (early firing, ``settle`` 5 s) ticks every 5 s of data time over that
  hour and a half, ``event.ingested`` one second after each event, so what a tick sees is what a
  live run would have seen. Reported: the time from the outage's start to its first alert, per
  province, and every alert outside an outage (false alerts).

``--rules`` runs other ratio rules the same way, each with its service's events (:data:`SHAPES`):
``otp_send_failure_carrier`` (OTP SMS over five carriers; the outage: every MobiFone SMS of the
province fails), ``national_db_lookup_failing`` (look-ups in four databases; the outage: the
population database refuses or times out on every look-up), ``web_access_denied_burst`` (a
portal's access log, 4% refused as usual; the outage: single sign-on broken, every request 403),
``portal_sync_failing`` (dossier pushes to the national portal, 1% failing as usual; the outage:
every push times out or gets a 502), one report for all (``--report``)::

    .venv/bin/python bench/rules_low_volume.py --report bench/reports/rules-low-volume-ratio3.md \
      --rules otp_send_failure_carrier,national_db_lookup_failing,web_access_denied_burst

``--with-probes`` adds each province's health probe of the outage's service and runs
``probe_service_down`` beside the rule (``bench/low_volume_probes.py``).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import low_volume_probes as probe  # bench/ is on sys.path when run as a script
from elasticsearch import Elasticsearch
from scipy.stats import poisson

from detectors.base import floor, iso
from detectors.sigma.compiler import load_rules
from detectors.sigma.runner import Engine
from soc import timeutil
from soc.config import load_settings
from soc.es.client import make_client
from soc.es.indices import Indices
from soc.es.templates import setup, teardown
from soc.events.service import index_events
from soc.localities import catalogue

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "bench" / "reports" / "rules-low-volume.md"
RULE = "service_failure_ratio"
RATES = (13, 26, 39, 60, 120)
BUSY = ("01", 600)
#: A failure class, its share (usual failures) or weight (an outage's), its code (a web status).
Failing = tuple[tuple[str, float, str], ...]


@dataclass(frozen=True)
class Shape:
    """The events of one rule's service: a request, how it usually fails, how an outage fails
    it (each kind in turn over the quiet provinces), and the group field it is split by."""

    service: str
    dataset: str
    category: str
    action: str | None
    usual: Failing
    outages: tuple[tuple[str, Failing], ...]
    #: The field the rule groups by besides the place, its values and weights, and the value
    #: whose requests the outage hits (None: the field is left out, every request is hit).
    field: tuple[str, tuple[tuple[str, int], ...], str] | None = None
    web: bool = False  # an access log: failures are HTTP statuses


TIMEOUT, SERVER = 0.003, 0.002
SHAPES = {
    RULE: Shape("vneid", "vneid.auth", "authentication", "login",
                (("timeout", TIMEOUT, "TIMEOUT"), ("server_error", SERVER, "VNEID-502")),
                (("timeout", (("timeout", 1, "TIMEOUT"),)),
                 ("mixed", (("timeout", 2, "TIMEOUT"), ("server_error", 1, "VNEID-502"))))),
    "otp_send_failure_carrier": Shape(
        "otp-gateway", "otp-gateway.sms", "authentication", "otp-send",
        (("timeout", 0.005, "SMS_TIMEOUT"), ("delivery", 0.01, "SMS_UNDELIVERABLE")),
        (("carrier", (("delivery", 1, "SMS_DELIVERY_FAILED"),)),),
        ("soc.otp.carrier", (("viettel", 52), ("vinaphone", 24), ("mobifone", 18),
                             ("itelecom", 3), ("vietnamobile", 3)), "mobifone")),
    "national_db_lookup_failing": Shape(
        "national-db", "national-db.lookup", "database", "db-lookup",
        (("timeout", 0.003, "DB_TIMEOUT"), ("not_found", 0.003, "NOT_FOUND")),
        (("refused", (("refused", 1, "DB_UNREACHABLE"),)),
         ("mixed", (("refused", 1, "DB_UNREACHABLE"), ("timeout", 1, "DB_TIMEOUT")))),
        ("soc.db.name", (("population", 70), ("land", 10), ("business", 10),
                         ("civil_status", 10)), "population")),
    "web_access_denied_burst": Shape(
        "web-portal", "web-portal.access", "web", None,
        (("auth_rejected", 0.04, "401"), ("not_found", 0.02, "404")),
        (("sso", (("auth_rejected", 1, "403"),)),), web=True),
    "portal_sync_failing": Shape(
        "portal-sync", "portal-sync.sync", "network", "dossier-sync",
        (("server_error", 0.01, "SYNC_HTTP_502"),),
        (("portal-down", (("timeout", 2, "SYNC_TIMEOUT"), ("server_error", 1, "SYNC_HTTP_502"))),)),
}  # fmt: skip


def _quiet(shape: Shape) -> list[tuple[str, int, str]]:
    """Quiet provinces (code, events an hour at night, outage kind): every province but Hà Nội,
    rates and the shape's outage kinds in turn."""
    kinds = [name for name, _ in shape.outages]
    return [(p.code, RATES[n % len(RATES)], kinds[n // len(RATES) % len(kinds)])
            for n, p in enumerate(p for p in catalogue().provinces if p.code != "01")]  # fmt: skip


def _event(
    rng: random.Random, shape: Shape, at: datetime, province: str, value: str | None,
    failure: tuple[str, str] | None,
) -> dict[str, Any]:  # fmt: skip
    name = catalogue().province(province).name
    event = {"kind": "event", "category": [shape.category], "dataset": shape.dataset,
             "outcome": "failure" if failure else "success",
             "ingested": iso(at + timedelta(seconds=1))}  # fmt: skip
    if shape.action:
        event["action"] = shape.action
    doc: dict[str, Any] = {
        "@timestamp": iso(at), "event": event, "service": {"name": shape.service},
        "locality": {"province": {"code": province, "name": name}},
        "source": {"ip": f"113.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"},
    }  # fmt: skip
    if shape.field and value is not None:
        *parents, leaf = shape.field[0].split(".")
        node = doc
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    if shape.web:
        doc["http"] = {"response": {"status_code": int(failure[1]) if failure else 200}}
    if failure:
        doc["error"] = {"type": failure[0], **({} if shape.web else {"code": failure[1]})}
    return doc


def _stream(
    rng: random.Random, shape: Shape, province: str, rate: float, start: datetime, end: datetime,
    outage: str = "",
) -> list[dict[str, Any]]:  # fmt: skip
    """Poisson arrivals at ``rate`` an hour; each fails as usual, or always during an outage
    (only those of the hit value of the shape's field)."""
    kinds = dict(shape.outages)
    out: list[dict[str, Any]] = []
    at = start
    while True:
        at += timedelta(seconds=rng.expovariate(rate / 3600))
        if at >= end:
            return out
        value = None
        if shape.field:
            names, weights = zip(*shape.field[1], strict=True)
            value = rng.choices(names, weights)[0]
        failure: tuple[str, str] | None = None
        if outage and (shape.field is None or value == shape.field[2]):
            cls, _, code = rng.choices(kinds[outage], [w for _, w, _ in kinds[outage]])[0]
            failure = (cls, code)
        else:
            roll = rng.random()
            for cls, share, code in shape.usual:
                if roll < share:
                    failure = (cls, code)
                    break
                roll -= share
        out.append(_event(rng, shape, at, province, value, failure))


def _load(
    es: Elasticsearch, indices: Indices, shape: Shape, t: datetime, days: int, seed: int,
    probed: dict[str, Any] | None = None,
) -> tuple[int, dict[str, list[float]]]:  # fmt: skip
    """Index the events; the count, and the seconds after ``t`` of each province's failures.
    With ``probed`` (a dict to fill), the probe's too (:func:`low_volume_probes.events`)."""
    rng = random.Random(seed)
    live, end = t - timedelta(hours=1), t + timedelta(minutes=30)
    events: list[dict[str, Any]] = []
    failed: dict[str, list[float]] = {}
    for code, rate, kind in _quiet(shape):
        events += _stream(rng, shape, code, rate, t - timedelta(days=days), t)
        outage = _stream(rng, shape, code, rate, t, end, kind)
        events += outage
        failed[code] = [(_at(e) - t).total_seconds() for e in outage if _hit(shape, e)]
    code, rate = BUSY
    events += _stream(rng, shape, code, rate, t - timedelta(days=days), live)
    events += _stream(rng, shape, code, 3 * rate, live, end)
    if probed is not None:
        places = [(c, k) for c, _, k in _quiet(shape)] + [(code, "")]
        made, probed["failed"], probed["lost"] = probe.events(shape, places, t, end, days, seed)
        events += made
    written = index_events(es, indices, events, refresh=True)
    if written.errors:
        raise SystemExit(f"events rejected: {written.errors[0]}")
    return len(events), failed


def _hit(shape: Shape, event: dict[str, Any]) -> bool:
    """Whether ``event`` is one the outage failed (not a usual failure of another value)."""
    if event["event"]["outcome"] != "failure" or shape.field is None:
        return bool(event["event"]["outcome"] == "failure")
    node: Any = event
    for part in shape.field[0].split("."):
        node = node.get(part, {})
    return bool(node == shape.field[2])


def _at(event: dict[str, Any]) -> datetime:
    return timeutil.parse(str(event["@timestamp"]))


def _run(
    es: Elasticsearch, indices: Indices, names: list[str], start: datetime, stop: datetime,
    tick: float,
) -> tuple[list[Any], float]:  # fmt: skip
    """The rules ``names`` in one engine ticking every ``tick`` s of data time from ``start`` to
    ``stop``; every alert in the index, and the median seconds a tick took."""
    rules = [load_rules().get(name) for name in names]
    engine = Engine(es, indices, rules, settle=timedelta(seconds=5), early=True, start=start)
    now, seconds, ticks = start + timedelta(seconds=tick), [], 0
    while now <= stop:
        began = time.monotonic()
        engine.tick(now)
        seconds.append(time.monotonic() - began)
        ticks += 1
        now += timedelta(seconds=tick)
    es.indices.refresh(index=indices.alerts)
    hits = es.search(index=indices.alerts, size=10000, sort=[{"@timestamp": "asc"}])["hits"]["hits"]
    return [h["_source"] for h in hits], statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--history-days", type=int, default=2)
    parser.add_argument("--tick", type=float, default=5.0, help="seconds of data time per tick")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--rules", default=RULE, help=f"comma-separated, of {sorted(SHAPES)}")
    parser.add_argument("--report", type=Path, default=REPORT)
    parser.add_argument(
        "--with-probes",
        action="store_true",
        help=f"also each province's probe of the service, and {probe.RULE}",
    )
    args = parser.parse_args()
    settings = load_settings()
    es = make_client(settings)
    # 03:00 in Viet Nam (20:00 UTC) yesterday: a night hour.
    t = floor(datetime.now(UTC), timedelta(days=1)) - timedelta(hours=4)
    lines: list[str] = []
    for name in args.rules.split(","):
        if args.with_probes and (why := probe.unseen(SHAPES[name])):
            raise SystemExit(f"--with-probes: a probe cannot see {name}'s outage: {why}")
    for name in args.rules.split(","):
        indices = Indices(f"lowvol-{datetime.now(UTC):%Y%m%d%H%M%S}")
        setup(es, indices)
        try:
            lines += _one(es, indices, args, name, t)
        finally:
            if not args.keep:
                teardown(es, indices.prefix)
    args.report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"report: {args.report}")


def _one(
    es: Elasticsearch, indices: Indices, args: argparse.Namespace, name: str, t: datetime
) -> list[str]:
    """Load, run and report one rule (with the probe and its rule under ``--with-probes``)."""
    began = time.monotonic()
    probed: dict[str, Any] | None = {} if args.with_probes else None
    shape = SHAPES[name]
    count, failed = _load(es, indices, shape, t, args.history_days, args.seed, probed)
    loaded = time.monotonic() - began

    def run(names: list[str], start: datetime, stop: datetime, tick: float) -> list[Any]:
        return _run(es, indices, names, start, stop, tick)[0]

    before = [] if probed is None else probe.history(run, t, args.history_days)
    live = t - timedelta(hours=1)
    names = [name] if probed is None else [name, probe.RULE]
    alerts, per_tick = _run(es, indices, names, live, t + timedelta(minutes=30), args.tick)
    alerts = [a for a in alerts if timeutil.parse(a["@timestamp"]) >= live]
    title = load_rules().get(name).title
    mine = [a for a in alerts if a["rule"]["name"] == title]
    lines = _report(args, name, t, count, loaded, mine, per_tick, failed)
    if probed is None:
        return lines
    return lines + probe.report(RATES, _quiet(shape), t, alerts, name, probed, before)


def _failures(alert: dict[str, Any]) -> int:
    """The failures the test of ``alert`` counted (0 without a ratio test)."""
    return int(alert["alert"]["explanation"].get("ratio", {}).get("failures") or 0)


def _expected(shape: Shape, rate: int, k: int) -> float:
    """The chance that the ``k``-th failed request of an outage arrives within 5 minutes, for
    Poisson arrivals at ``rate`` an hour (times the share of the hit value)."""
    share = dict(shape.field[1])[shape.field[2]] / sum(dict(shape.field[1]).values()) \
        if shape.field else 1.0  # fmt: skip
    return float(poisson.sf(k - 1, rate * share * 5 / 60))


def _bound(shape: Shape, rate: int, failed: list[list[float]], k: int) -> str:
    """How many of ``failed`` (each outage's failure times, in seconds) had their ``k``-th
    failure within 5 minutes, and the share Poisson arrivals give (:func:`_expected`)."""
    seen = sum(1 for times in failed if len(times) >= k and times[k - 1] <= 300)
    return f"{seen} of {len(failed)} ({_expected(shape, rate, k):.0%})"


def _report(args: argparse.Namespace, name: str, t: datetime, count: int, loaded: float,
            alerts: list[dict[str, Any]], per_tick: float,
            failed: dict[str, list[float]]) -> list[str]:  # fmt: skip
    load = os.getloadavg()
    shape = SHAPES[name]
    quiet = _quiet(shape)
    first: dict[str, tuple[float, dict[str, Any]]] = {}
    false = []
    for alert in alerts:
        code = alert.get("locality", {}).get("province", {}).get("code")
        created = timeutil.parse(alert["@timestamp"])
        delay = (created - t).total_seconds()
        if code in {c for c, _, _ in quiet} and delay >= 0:
            first.setdefault(code, (delay, alert))
        else:
            false.append(alert)
    rows = []
    for code, rate, kind in quiet:
        where = catalogue().province(code).name
        second, third = (f"{failed[code][i] / 60:.1f}" if len(failed[code]) > i else "-"
                         for i in (1, 2))  # fmt: skip
        if code in first:
            delay, alert = first[code]
            why = alert["alert"]["explanation"]
            test = why.get("ratio", {})
            rows.append(f"| {where} | {rate} | {kind} | **{delay / 60:.1f} min** | {second} | "
                        f"{third} | {why.get('failure_class')} | {test.get('failures')}/"
                        f"{test.get('total')} | {test.get('baseline_ratio')} | "
                        f"{test.get('p_value')} |")  # fmt: skip
        else:
            rows.append(f"| {where} | {rate} | {kind} | **missed** | {second} | {third} | | | | |")
    by_rate = []
    for rate in RATES:
        places = [(c, k) for c, r, k in quiet if r == rate]
        delays = [first[c][0] / 60 if c in first else math.inf for c, _ in places]
        fast = sum(1 for d in delays if d <= 5)
        bound = [_bound(shape, rate, [failed[c] for c, _ in places], k) for k in (2, 3)]
        needed = sorted({_failures(first[c][1]) for c, _ in places if c in first} - {0})
        by_rate.append(f"| {rate} | {len(delays)} | {statistics.median(delays):.1f} min | "
                       f"{max(delays):.1f} min | **{fast} of {len(delays)}** | {bound[0]} | "
                       f"{bound[1]} | {', '.join(map(str, needed)) or '-'} |")  # fmt: skip
    within = sum(1 for c, _, _ in quiet if c in first and first[c][0] <= 300)
    kth = {k: sum(1 for c, _, _ in quiet if len(failed[c]) >= k and failed[c][k - 1] <= 300)
           for k in (1, 2, 3)}  # fmt: skip
    ratio = load_rules().get(name).ratio
    alpha = ratio.alpha if ratio else math.nan
    expect = {k: sum(_expected(shape, r, k) for _, r, _ in quiet) for k in (2, 3)}
    on_kth = sum(1 for c, _, _ in quiet if c in first and (n := _failures(first[c][1]))
                 and len(failed[c]) >= n and failed[c][n - 1] <= 300)  # fmt: skip
    what = {
        RULE: "A 100%-failure VNeID outage",
        "otp_send_failure_carrier": "MobiFone's SMS all failing (a carrier outage)",
        "national_db_lookup_failing": "Every population-database look-up failing",
        "web_access_denied_burst": "Single sign-on broken (every request 403)",
        "portal_sync_failing": "The national portal failing every dossier push",
    }[name]
    hit = (
        f" ({shape.field[0]} `{shape.field[2]}`: {dict(shape.field[1])[shape.field[2]]}% of them)"
        if shape.field
        else ""
    )
    lines = [
        "# Volume-aware rules at night volumes (`bench/rules_low_volume.py`)"
        if name == args.rules.split(",")[0] else f"# `{name}`", "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} cores, "
        f"{platform.processor() or platform.machine()}), Python {platform.python_version()}, load "
        f"average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (shared machine); rule `{name}`; "
        f"{count:,} events ({args.history_days} days of history, indexed in {loaded:.0f} s); "
        f"outages start at {iso(t)} (03:00 in Viet Nam); a tick every {args.tick:g} s of data "
        f"time, median {per_tick * 1000:.0f} ms a tick; seed {args.seed}.", "",
        f"## {what} in a quiet province", "",
        f"Events an hour: the province's `{shape.service}` events{hit}.", "",
        "| events an hour | outages | median time to alert | slowest | within 5 min | 2nd failure "
        "within 5 min (Poisson) | 3rd failure within 5 min (Poisson) | failures the alerts "
        "needed |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |", *by_rate, "",
        "The information bound: a test that needs k failed requests cannot alert before the k-th "
        "failed request after the outage starts. The 2nd and 3rd failure columns count the "
        "outages whose 2nd (3rd) failed request arrived within 5 minutes, in these generated "
        "events; in brackets the share Poisson arrivals at that rate give (the same events' "
        "expectation, free of this seed's luck). The last column: the failures counted in the "
        "test of each alert at that rate.", "",
        "Each province (the outage starts at 0; the 2nd and 3rd failed requests arrive at the "
        "minutes shown: no rule can know sooner):", "",
        "| province | events an hour | outage | first alert after | 2nd failure | 3rd failure "
        "| class | failures/total | baseline | p |",
        "| --- | ---: | --- | ---: | ---: | ---: | --- | --- | ---: | ---: |", *rows, "",
        f"Alerted within 5 minutes: **{within} of {len(quiet)}**; the 1st, 2nd and 3rd failed "
        f"request arrived within 5 minutes in {kth[1]}, **{kth[2]}** and {kth[3]} of "
        f"{len(quiet)} (what a rule alerting on its 1st, 2nd or 3rd failure could do at best; "
        f"Poisson expectation for the 2nd and 3rd: {expect[2]:.1f} and {expect[3]:.1f}), and "
        f"the failure each alert's test counted up to (its k-th) in {on_kth} of {len(quiet)}. "
        "The rule needs two failures "
        "in a row where the baseline failure rate is low enough for the place's volume (a "
        f"binomial tail under {alpha:g} divided by the requests an hour), more otherwise; so the "
        "time to alert is two or three gaps between requests: the first failed request only "
        "arrives ~60/rate minutes after the outage starts.",
        "", "## Hà Nội's busy hour (3x its volume, usual failure rate) and quiet nights", "",
        f"False alerts (outside the outages, Hà Nội at {3 * BUSY[1]:,} events an hour included): "
        f"**{len(false)}**", "",
    ]  # fmt: skip
    lines += [
        f"- {a.get('locality', {}).get('province', {}).get('name')} at "
        f"{(timeutil.parse(a['@timestamp']) - t).total_seconds() / 60:+.1f} min: "
        f"{a.get('message') or a.get('alert', {}).get('summary')} "
        f"({a.get('alert', {}).get('explanation', {}).get('ratio')})"
        for a in false
    ]
    print("\n".join(lines))
    return lines


if __name__ == "__main__":
    main()
