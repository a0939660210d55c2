"""What each scenario kind does to the traffic: records it changes or drops, records it adds.

``transform`` sees every baseline record of the scenario's province and window and returns it
changed, unchanged or ``None`` (dropped); ``inject`` returns the extra records of one hour (attacks,
retries). Both draw from the random stream they are given, so a run is reproducible. Adding a kind
means one transform and/or one injector registered below.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from soc.localities import Locality, Ward, catalogue
from soc.services import Service
from soc.simulate import people
from soc.simulate.models import AccessRecord, AppRecord, Record
from soc.simulate.profile import host_name
from soc.simulate.scenarios import Kind, Scenario

Transform = Callable[[Scenario, Record, random.Random], Record | None]
Injector = Callable[[Scenario, datetime, datetime, random.Random], list[Record]]


def applies(scn: Scenario, rec: Record) -> bool:
    """Is ``rec`` inside the scenario's window and place (and about its service)?"""
    if not scn.start <= rec.at < scn.end:
        return False
    if rec.where.province.code != scn.where.province.code:
        return False
    if scn.kind is Kind.COMMUNE_SILENT:
        return rec.where.ward == scn.where.ward
    if scn.service is not None and rec.service is not scn.service:
        return False
    if scn.kind is Kind.SYNC_STOPPED:
        return not scn.wards or rec.where in scn.wards
    return True


def transform(scn: Scenario, rec: Record, rng: random.Random) -> Record | None:
    fn = TRANSFORMS.get(scn.kind)
    if fn is None or not applies(scn, rec):
        return rec
    return fn(scn, rec, rng)


def inject(scn: Scenario, start: datetime, end: datetime, rng: random.Random) -> list[Record]:
    """Extra records of the scenario within ``[start, end)`` (clipped to its window)."""
    fn = INJECTORS.get(scn.kind)
    lo, hi = max(start, scn.start), min(end, scn.end)
    if fn is None or lo >= hi:
        return []
    return fn(scn, lo, hi, rng)


def _times(scn: Scenario, lo: datetime, hi: datetime, rng: random.Random) -> list[datetime]:
    seconds = (hi - lo).total_seconds()
    mean = scn.spec.rate_per_minute * seconds / 60
    count = max(0, round(rng.gauss(mean, math.sqrt(mean)))) if mean > 0 else 0
    return sorted(lo + timedelta(seconds=rng.uniform(0, seconds)) for _ in range(count))


# ----------------------------------------------------------------------- transforms
def _vneid_outage(scn: Scenario, rec: Record, rng: random.Random) -> Record | None:
    if not isinstance(rec, AppRecord):
        return rec
    if rec.get("step") != "authorize":
        return None  # the flow never gets past the redirect
    return replace(rec, result="failure", level="error", error_code="VNEID-503",
                   latency_ms=30_000, msg="upstream VNeID unavailable")  # fmt: skip


def _vneid_storm(scn: Scenario, rec: Record, rng: random.Random) -> Record | None:
    if not isinstance(rec, AppRecord) or rng.random() >= scn.spec.error_rate:
        return rec
    return replace(rec, result="failure", level="error",
                   error_code=rng.choice(("VNEID-500", "VNEID-502", "TIMEOUT")))  # fmt: skip


def _carrier(scn: Scenario, rec: Record, rng: random.Random) -> Record | None:
    if not isinstance(rec, AppRecord) or rec.get("carrier") != scn.spec.carrier:
        return rec
    if rec.event == "otp_verify":
        return None  # no SMS arrived, so nobody types a code
    return replace(rec, result="failure", level="error", error_code="SMS_DELIVERY_FAILED",
                   latency_ms=rng.randint(10_000, 30_000))  # fmt: skip


def _oss_5xx(scn: Scenario, rec: Record, rng: random.Random) -> Record | None:
    if rng.random() >= scn.spec.error_rate:
        return rec
    if isinstance(rec, AccessRecord):
        return replace(rec, status=rng.choice((500, 502, 503, 504)), size=rng.randint(150, 600))
    if not isinstance(rec, AppRecord):
        return rec
    return replace(rec, result="failure", level="error", error_code="OSS-500")


def _drop(scn: Scenario, rec: Record, rng: random.Random) -> Record | None:
    return None


def _sync_stopped(scn: Scenario, rec: Record, rng: random.Random) -> Record | None:
    # The job's run records already know the outage (traffic.sync_runs): only pushes are lost.
    if isinstance(rec, AppRecord) and rec.event == "sync_run":
        return rec
    return None


def _slow(scn: Scenario, rec: Record, rng: random.Random) -> Record | None:
    progress = (rec.at - scn.start) / (scn.end - scn.start)
    factor = 1 + (scn.spec.max_factor - 1) * progress
    if isinstance(rec, AccessRecord):
        seconds = rec.seconds * factor
        if seconds >= 60:  # the proxy gives up
            return replace(rec, seconds=60.0, status=504, size=160)
        return replace(rec, seconds=seconds)
    if not isinstance(rec, AppRecord):
        return rec  # probe results are made from the fleet's states, never transformed
    latency = int((rec.latency_ms or 100) * factor)
    if latency >= 30_000:
        return replace(rec, latency_ms=30_000, result="failure", level="error",
                       error_code="TIMEOUT")  # fmt: skip
    return replace(rec, latency_ms=latency)


# ----------------------------------------------------------------------- injectors
def _brute_force(scn: Scenario, lo: datetime, hi: datetime, rng: random.Random) -> list[Record]:
    ward = scn.where.ward or rng.choice(_wards(scn))
    ip = people.ip(random.Random(scn.id))  # one attacker address for the whole scenario
    return [
        AppRecord(at=at, service=Service.OTP, where=Locality(scn.where.province, ward),
                  host=host_name(Service.OTP, scn.where.province), event="otp_verify",
                  result="failure", level="warn", error_code="OTP_INVALID", user=scn.account,
                  ip=ip, latency_ms=rng.randint(40, 200),
                  request_id=f"{rng.getrandbits(64):016x}",
                  extra=(("carrier", "viettel"), ("purpose", "login")))
        for at in _times(scn, lo, hi, rng)
    ]  # fmt: skip


def _stuffing(scn: Scenario, lo: datetime, hi: datetime, rng: random.Random) -> list[Record]:
    attackers = [people.ip(random.Random(f"{scn.id}:{i}")) for i in range(4)]
    wards = _wards(scn)
    out: list[Record] = []
    for at in _times(scn, lo, hi, rng):
        ward = scn.where.ward or rng.choice(wards)
        out.append(AppRecord(
            at=at, service=Service.VNEID, where=Locality(scn.where.province, ward),
            host=host_name(Service.VNEID, scn.where.province), event="login", result="failure",
            level="warn", error_code="VNEID-401", msg="invalid credentials",
            user=f"cd{ward.code}{rng.randrange(100_000):05d}", ip=rng.choice(attackers),
            latency_ms=rng.randint(80, 400), request_id=f"{rng.getrandbits(64):016x}",
            extra=(("step", "authorize"),),
        ))  # fmt: skip
    return out


_ATTACKS = (
    ("/../../../../etc/passwd", None),
    ("/tin-tuc/..%2f..%2f..%2fetc%2fpasswd", None),
    ("/tim-kiem", "q=1'%20OR%20'1'='1"),
    ("/van-ban", "id=1%20UNION%20SELECT%20username,password%20FROM%20users--"),
    ("/tim-kiem", "q=%3Cscript%3Ealert(1)%3C/script%3E"),
    ("/.env", None),
    ("/wp-admin/admin-ajax.php", None),
    ("/cgi-bin/../../../../bin/sh", None),
)


def _web_attack(scn: Scenario, lo: datetime, hi: datetime, rng: random.Random) -> list[Record]:
    attacker = people.ip(random.Random(scn.id))
    agent = people.SCANNER_AGENTS[random.Random(scn.id).randrange(len(people.SCANNER_AGENTS))]
    out: list[Record] = []
    for at in _times(scn, lo, hi, rng):
        path, query = rng.choice(_ATTACKS)
        out.append(AccessRecord(
            at=at, service=Service.WEB_PORTAL, where=scn.where, ip=attacker, user=None,
            method="GET", path=path, query=query, status=rng.choice((400, 403, 404, 404, 500)),
            size=rng.randint(150, 2000), referrer=None, agent=agent,
            seconds=rng.randint(5, 300) / 1000,
        ))  # fmt: skip
    return out


def _wards(scn: Scenario) -> list[Ward]:
    return list(catalogue().wards_of(scn.where.province.code))


TRANSFORMS: dict[Kind, Transform] = {
    Kind.VNEID_OUTAGE: _vneid_outage,
    Kind.VNEID_ERROR_STORM: _vneid_storm,
    Kind.OTP_CARRIER_FAILURE: _carrier,
    Kind.OSS_5XX_STORM: _oss_5xx,
    Kind.SYNC_STOPPED: _sync_stopped,
    Kind.COMMUNE_SILENT: _drop,
    Kind.SLOW_DEGRADATION: _slow,
}
INJECTORS: dict[Kind, Injector] = {
    Kind.OTP_BRUTE_FORCE: _brute_force,
    Kind.CREDENTIAL_STUFFING: _stuffing,
    Kind.WEB_ATTACK: _web_attack,
}
