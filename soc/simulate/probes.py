"""Health-probe results in simulated history: what soc's probe collector would have reported.

The live demo probes the mock fleet (``fleet``) for real; a backfilled history needs the same
results, or the anomaly model never learns that a commune's portal is checked every minute and
answers. Every endpoint of the fleet (each commune's web portal, each provincial system) is
checked every :data:`CHECK_EVERY`. As the probe collector does with ``report_every``, a healthy
target is reported about once per :data:`REPORT_EVERY` (at a phase of its own), every failed
check is reported, and so is the first good check after a failure. Which endpoints are down,
erroring or slow, and when, comes from the scenarios through :func:`fleet.endpoint_effect`, the
same mapping the live fleet uses. Now and then one check fails for no reason (a lost packet,
:data:`TRANSIENT` per check), alone.

Healthy results are one event per target and hour: 3,559 targets make ~85,000 events a day, and
the lost checks and their recoveries bring it to ~90,000, whatever the traffic scale. Generation
is per (province, hour) from its own random stream, like the traffic.
"""

from __future__ import annotations

import random
import zlib
from datetime import datetime, timedelta

from soc.localities import Catalogue, Locality
from soc.services import Service
from soc.simulate.fleet import PROVINCE_SERVICES, Mode, endpoint_effect, slow_delay
from soc.simulate.models import ProbeRecord
from soc.simulate.scenarios import Scenario
from soc.simulate.traffic import HOUR, poisson, stream

CHECK_EVERY = timedelta(seconds=60)
REPORT_EVERY = HOUR
TRANSIENT = 5e-4
CHECKS = int(HOUR / CHECK_EVERY)
_ERRORS = {
    Mode.DOWN: (None, "RemoteDisconnected: Remote end closed connection without response"),
    Mode.ERROR: (503, "HTTP 503, expected 200"),
}
#: A host name that can never resolve (RFC 2606): the history's targets are not real endpoints.
_HOST = "http://fleet.invalid"

Target = tuple[Service, Locality, str, str]  # service, where, target name, URL
#: From, until, how the endpoint fails, and the scenario that makes it so (None: a bench's own).
Span = tuple[datetime, datetime, Mode, Scenario | None]


def targets(cat: Catalogue, code: str) -> list[Target]:
    """The province's endpoints, named as ``fleet.Fleet.targets`` names them."""
    province = cat.province(code)
    out: list[Target] = [
        (s, Locality(province), f"{s.value}-{code}", f"{_HOST}/{code}/{s.value}/health")
        for s in PROVINCE_SERVICES
    ]
    out += [
        (
            Service.WEB_PORTAL,
            Locality(province, w),
            f"web-portal-{w.code}",
            f"{_HOST}/{code}/web-portal/{w.code}/",
        )
        for w in cat.wards_of(code)
    ]
    return out


def _phase(name: str, span: timedelta) -> timedelta:
    """A target's own, stable offset within ``span`` (collectors start their targets apart)."""
    return timedelta(seconds=zlib.crc32(name.encode()) % int(span.total_seconds()))


def hour_probes(
    cat: Catalogue, seed: int, code: str, hour: datetime, scenarios: tuple[Scenario, ...]
) -> list[ProbeRecord]:
    """Every probe result of province ``code`` in the hour starting at ``hour`` (UTC)."""
    end = hour + HOUR
    spans: dict[tuple[str, str | None], list[Span]] = {}
    for scn in scenarios:
        if scn.where.province.code != code or not scn.active(hour - CHECK_EVERY, end):
            continue
        effect = endpoint_effect(scn)
        if effect is not None:
            (_, affected, ward_code), how = effect
            spans.setdefault((affected, ward_code), []).append((scn.start, scn.end, how, scn))
    rng = stream(seed, "probe", code, hour.isoformat())
    out: list[ProbeRecord] = []
    for target in targets(cat, code):
        service, where, _, _ = target
        ward = where.ward.code if where.ward else None
        out += target_hour(rng, target, hour, spans.get((service.value, ward), []))
    out.sort(key=lambda r: r.at)
    return out


def target_hour(
    rng: random.Random, target: Target, hour: datetime, mine: list[Span]
) -> list[ProbeRecord]:
    """One target's results in the hour starting at ``hour``: down or erroring in ``mine``
    (its spans), a lost check now and then, a healthy report once per :data:`REPORT_EVERY`."""
    name = target[2]
    first = hour + _phase(name, CHECK_EVERY)
    due = max(0, (_phase(name, REPORT_EVERY) - (first - hour)) // CHECK_EVERY)
    # Transient failures: how many this hour, then where (never the last check, so the
    # good check that follows is in this hour too).
    lost = {rng.randrange(CHECKS - 1) for _ in range(poisson(rng, CHECKS * TRANSIENT))}

    if not mine and not lost:  # the usual hour: one healthy report
        return [_result(rng, target, first + due * CHECK_EVERY, None, 0.0)]
    out: list[ProbeRecord] = []
    failed_before = _state(mine, first - CHECK_EVERY)[0] in _ERRORS
    for i in range(CHECKS):
        at = first + i * CHECK_EVERY
        mode, cause = _state(mine, at)
        failing = mode if mode in _ERRORS else (Mode.DOWN if i in lost else None)
        slow = slow_delay(cause, at) if mode is Mode.SLOW and cause is not None else 0.0
        if failing is not None or failed_before or i == due:
            out.append(_result(rng, target, at, failing, slow))
        failed_before = failing is not None
    return out


def _result(
    rng: random.Random, target: Target, at: datetime, failing: Mode | None, slow: float
) -> ProbeRecord:
    service, where, name, url = target
    if failing in _ERRORS:
        status, error = _ERRORS[failing]
        latency = rng.uniform(1, 30) if status is None else rng.uniform(5, 60)
        return ProbeRecord(at, service, where, name, url, False, status, latency, error)
    latency = rng.uniform(4, 40) + slow * 1000
    return ProbeRecord(at, service, where, name, url, True, 200, latency)


def _state(spans: list[Span], at: datetime) -> tuple[Mode | None, Scenario | None]:
    for start, stop, mode, scn in spans:
        if start <= at < stop:
            return mode, scn
    return None, None
