"""The health probe beside the night outages of ``bench/rules_low_volume.py`` (``--with-probes``).

soc checks every provincial system of every province once a minute (soc/simulate/fleet.py); a
service that is down or erroring in a province fails its check whatever its traffic. This module
owns what the bench adds for that: each province's probe results for the outage's service, made
by the simulator's own code (:func:`soc.simulate.probes.target_hour`: a healthy report about
hourly, every failed check, the lost checks at the simulator's ``TRANSIENT`` rate), failing every
check during the outage in the outage's own way (a timeout or a refused connection: the endpoint
down; a 5xx: the endpoint erroring); a pass of ``probe_service_down`` over the whole history
(the lost checks it must not alert on); and the report of the outage's first alert by either
rule, per rate.
"""

from __future__ import annotations

import math
import random
import statistics
from datetime import datetime, timedelta
from typing import Any, Protocol

from detectors.sigma.compiler import load_rules
from soc import timeutil
from soc.localities import catalogue
from soc.services import Service
from soc.simulate import probes
from soc.simulate.fleet import PROVINCE_SERVICES, Mode
from soc.simulate.formats import to_ecs
from soc.simulate.traffic import HOUR, stream

RULE = "probe_service_down"
#: How a probe sees a failed request of each class: no answer (down) or an HTTP error.
MODES = {"timeout": Mode.DOWN, "refused": Mode.DOWN, "server_error": Mode.ERROR}


class Shaped(Protocol):
    """What is read of ``rules_low_volume.Shape``: the service and how its outages fail."""

    @property
    def service(self) -> str: ...
    @property
    def outages(self) -> tuple[tuple[str, tuple[tuple[str, float, str], ...]], ...]: ...


def unseen(shape: Shaped) -> str | None:
    """Why a probe of the service cannot see the shape's outage (None: it can)."""
    if shape.service not in {s.value for s in PROVINCE_SERVICES}:
        return f"`{shape.service}` has no provincial probe target"
    classes = {cls for _, failing in shape.outages for cls, _, _ in failing}
    if classes - set(MODES):
        return (f"the outage fails requests with {sorted(classes - set(MODES))} behind an "
                "endpoint that still answers its health check")  # fmt: skip
    return None


def _spans(shape: Shaped, kind: str, t: datetime, end: datetime, rng: random.Random,
           ) -> list[probes.Span]:  # fmt: skip
    """The outage as the endpoint's spans: one a minute, each down or erroring with the
    weights of the outage's failure classes."""
    failing = dict(shape.outages)[kind]
    modes = [MODES[cls] for cls, _, _ in failing]
    weights = [w for _, w, _ in failing]
    out: list[probes.Span] = []
    at = t
    while at < end:
        out.append((at, at + probes.CHECK_EVERY, rng.choices(modes, weights)[0], None))
        at += probes.CHECK_EVERY
    return out


def events(
    shape: Shaped, places: list[tuple[str, str]], t: datetime, end: datetime, days: int,
    seed: int,
) -> tuple[list[dict[str, Any]], dict[str, list[float]], list[datetime]]:  # fmt: skip
    """The probe results of ``places`` (province code, outage kind; "" for none) from ``days``
    before ``t`` to ``end``, an outage from ``t`` on; the events, the seconds after ``t`` of
    each province's failed checks in the outage, and the times of the lost checks before it."""
    cat = catalogue()
    service = Service(shape.service)
    out: list[dict[str, Any]] = []
    failed: dict[str, list[float]] = {}
    lost: list[datetime] = []
    for code, kind in places:
        target = next(x for x in probes.targets(cat, code) if x[0] is service)
        mine = _spans(shape, kind, t, end, random.Random(f"{seed}-{code}")) if kind else []
        hour = t - timedelta(days=days)
        while hour < end:
            rng = stream(seed, "probe", code, hour.isoformat())
            for rec in probes.target_hour(rng, target, hour, mine):
                if rec.at >= end:
                    continue
                doc = to_ecs(rec)
                doc["event"]["ingested"] = timeutil.iso(rec.at + timedelta(seconds=1))
                out.append(doc)
                if rec.failed and rec.at >= t:
                    failed.setdefault(code, []).append((rec.at - t).total_seconds())
                elif rec.failed:
                    lost.append(rec.at)
            hour += HOUR
    return out, failed, lost


class Runner(Protocol):
    def __call__(self, names: list[str], start: datetime, stop: datetime, tick: float
                 ) -> list[dict[str, Any]]: ...  # fmt: skip


def history(run: Runner, t: datetime, days: int) -> list[dict[str, Any]]:
    """``probe_service_down`` over the history before the live hour (half an hour of data a
    tick: the rule's windows are searched all the same), before any other rule: its alerts,
    all false."""
    return run([RULE], t - timedelta(days=days), t - timedelta(hours=1), 1800.0)


def report(
    rates: tuple[int, ...], quiet: list[tuple[str, int, str]], t: datetime,
    alerts: list[dict[str, Any]], ratio: str, probed: dict[str, Any],
    before: list[dict[str, Any]],
) -> list[str]:  # fmt: skip
    """The report's section: the first alert by either rule per rate, each rule's false alerts
    (``probed``: the failed checks and lost checks :func:`events` gave)."""
    failed: dict[str, list[float]] = probed["failed"]
    lost: list[datetime] = probed["lost"]
    codes = {c for c, _, _ in quiet}
    first: dict[tuple[str, str], float] = {}
    false: dict[str, list[dict[str, Any]]] = {ratio: [], RULE: []}

    rule = load_rules().get(RULE)
    title = rule.title
    # The failed checks the rule needs (a correlation's count; 1 for a plain rule).
    k = rule.condition.count if rule.condition and rule.condition.op == "gte" else 1

    def name(alert: dict[str, Any]) -> str:
        return RULE if alert["rule"]["name"] == title else ratio

    for alert in alerts:
        code = alert.get("locality", {}).get("province", {}).get("code")
        delay = (timeutil.parse(alert["@timestamp"]) - t).total_seconds()
        if code in codes and delay >= 0:
            first.setdefault((name(alert), code), delay)
        else:
            false[name(alert)].append(alert)
    rows = []
    for rate in rates:
        places = [c for c, r, _ in quiet if r == rate]
        either = [min(first.get((ratio, c), 1e9), first.get((RULE, c), 1e9)) / 60 for c in places]
        each = {n: sum(1 for c in places if first.get((n, c), 1e9) <= 300) for n in (ratio, RULE)}
        checks = [failed[c][k - 1] / 60 for c in places if len(failed.get(c, [])) >= k]
        rows.append(f"| {rate} | {len(places)} | {statistics.median(either):.1f} min | "
                    f"{max(either):.1f} min | **{sum(1 for d in either if d <= 5)} of "
                    f"{len(places)}** | {each[ratio]} | {each[RULE]} | "
                    f"{min(checks, default=math.nan):.1f}-{max(checks, default=math.nan):.1f} "
                    "min |")  # fmt: skip
    fast = sum(1 for c in codes if min(first.get((n, c), 1e9) for n in (ratio, RULE)) <= 300)
    live = [at for at in lost if at >= t - timedelta(hours=1)]
    lines = [
        f"## With the health probe: `{ratio}` and `{RULE}` in the same ticks", "",
        "Each province's probe of the outage's service, one check a minute as the simulator "
        "makes them (a healthy report about hourly, every failed check, lost checks at "
        f"{probes.TRANSIENT:g} a check), failing every check during the outage. The last column: "
        f"when the outage's failed check {k} came, the one `{RULE}` needs (the {k} of its "
        "condition): the earliest it can alert.", "",
        "| events an hour | outages | median time to the first alert (either rule) | slowest | "
        f"within 5 min | of them `{ratio}` | of them `{RULE}` | failed check {k} |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |", *rows, "",
        f"Alerted within 5 minutes by either rule: **{fast} of {len(quiet)}**.", "",
        f"False alerts: `{ratio}` **{len(false[ratio])}**; `{RULE}` **{len(false[RULE])}** in the "
        f"ticked hour and a half ({len(live)} lost checks there) and **{len(before)}** over the "
        f"history before it ({len(lost) - len(live)} lost checks there).", "",
    ]  # fmt: skip
    for alert in [*false[RULE], *before]:
        lines.append(f"- `{RULE}` {alert.get('locality', {}).get('province', {}).get('name')} "
                     f"at {(timeutil.parse(alert['@timestamp']) - t).total_seconds() / 60:+.1f} "
                     f"min: {alert.get('alert', {}).get('summary')}")  # fmt: skip
    return lines
