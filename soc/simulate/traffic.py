"""Baseline (normal) traffic: what every watched system of a province logs in one hour.

Each (seed, province, service, hour) has its own random stream, so any hour can be regenerated
alone and identically: backfills can run in any order, live mode can resume, and a test can ask
for one hour of Hà Nội without generating the country. Normal errors are part of the baseline
(404s, mistyped OTPs, the odd timeout). Scenarios are applied on top by ``scenarios``; this module
must not know about them, with one exception passed in as plain data: the sync job's run records
(:func:`sync_runs`) count the communes a run could not sync, so the communes it cannot reach (a
:class:`SyncOutage`) are an argument of the run, not a record changed afterwards.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from soc.localities import Catalogue, Locality, Province, Ward
from soc.services import Service
from soc.simulate import people
from soc.simulate.models import AccessRecord, AppRecord, Record
from soc.simulate.profile import expected_units, host_name, province_wards, ward_weight

HOUR = timedelta(hours=1)
Maker = Callable[[random.Random, datetime, Province, Ward, float], list[Record]]


def stream(seed: int, *parts: object) -> random.Random:
    """An independent, reproducible random stream for one slice of the simulation."""
    return random.Random(":".join([str(seed), *map(str, parts)]))


def poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:  # normal approximation; exact sampling is needlessly slow at these means
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def hour_records(
    cat: Catalogue, seed: int, province: str, service: Service, hour: datetime, scale: float
) -> list[Record]:
    """Normal records of ``service`` in ``province`` for the hour starting at ``hour`` (UTC)."""
    if service is Service.PORTAL_SYNC:  # pushes what the one-stop shop changed (see synced)
        oss = Service.ONE_STOP_SHOP
        earlier = hour_records(cat, seed, province, oss, hour - HOUR, scale)
        pushes = synced(
            seed, [*earlier, *hour_records(cat, seed, province, oss, hour, scale)], hour
        )
        return sorted([*pushes, *sync_runs(cat, seed, province, hour)], key=lambda r: r.at)
    rng = stream(seed, province, service.value, hour.isoformat())
    wards, cumulative = province_wards(cat, province)
    prov = cat.province(province)
    maker = MAKERS[service]
    records: list[Record] = []
    for _ in range(poisson(rng, expected_units(cat, province, service, hour, scale))):
        ward = wards[bisect_left(cumulative, rng.random() * cumulative[-1])]
        at = hour + timedelta(milliseconds=rng.randrange(3_600_000))
        records.extend(maker(rng, at, prov, ward, ward_weight(ward, prov)))
    records.sort(key=lambda r: r.at)
    return records


def _ms(rng: random.Random, low: int, high: int) -> int:
    # Latencies are log-normal-ish: mostly near ``low``, a long tail up to ``high``.
    return min(high, int(low * math.exp(abs(rng.gauss(0, 0.8)))))


# ----------------------------------------------------------------------- access logs
_PORTAL_PATHS = (
    "/",
    "/tin-tuc/thong-bao",
    "/thu-tuc-hanh-chinh",
    "/van-ban/quy-dinh",
    "/lien-he",
    "/gioi-thieu",
    "/static/css/main.css",
    "/static/js/app.js",
)
_NATIONAL_PATHS = (
    "/p/home/dvc-trang-chu.html",
    "/p/home/dvc-tra-cuu-ho-so.html",
    "/p/home/dvc-dich-vu-cong-truc-tuyen.html",
    "/dang-nhap",
    "/thanh-toan",
)
_OSS_PATHS = ("/api/dossier/search", "/api/dossier/submit", "/api/procedure/list",
              "/dvc/tiep-nhan", "/dvc/tra-cuu")  # fmt: skip
_MISSING = ("/favicon.ico", "/wp-login.php", "/tin-tuc/bai-viet-cu", "/robots.txt")


def _access(rng: random.Random, at: datetime, service: Service, where: Locality,
            paths: tuple[str, ...], user: str | None) -> AccessRecord:  # fmt: skip
    roll = rng.random()
    if roll < 0.025:
        status, path = 404, rng.choice(_MISSING)
    elif roll < 0.027:
        status, path = rng.choice((500, 502, 504)), rng.choice(paths)
    else:
        status, path = rng.choices((200, 304, 302), (88, 8, 4))[0], rng.choice(paths)
    method = "POST" if path.endswith(("submit", "tiep-nhan", "dang-nhap")) else "GET"
    query = (
        f"page={rng.randint(1, 9)}" if path.startswith("/tin-tuc") and rng.random() < 0.3 else None
    )
    return AccessRecord(
        at=at, service=service, where=where, ip=people.ip(rng), user=user, method=method,
        path=path, query=query, status=status,
        size=0 if status == 304 else rng.randint(300, 60_000),
        referrer=rng.choice((None, "https://www.google.com/", "https://dichvucong.gov.vn/")),
        agent=people.agent(rng), seconds=_ms(rng, 40, 8000) / 1000,
    )  # fmt: skip


def _web_portal(rng: random.Random, at: datetime, p: Province, w: Ward, wt: float) -> list[Record]:
    return [_access(rng, at, Service.WEB_PORTAL, Locality(p, w), _PORTAL_PATHS, None)]


def _national_portal(
    rng: random.Random, at: datetime, p: Province, w: Ward, wt: float
) -> list[Record]:
    user = people.citizen(rng, w, wt) if rng.random() < 0.3 else None
    return [_access(rng, at, Service.NATIONAL_PORTAL, Locality(p), _NATIONAL_PATHS, user)]


def _one_stop_shop(
    rng: random.Random, at: datetime, p: Province, w: Ward, wt: float
) -> list[Record]:
    if rng.random() < 0.55:  # the web front of the provincial system (province-level access log)
        user = people.officer(rng, w) if rng.random() < 0.5 else None
        return [_access(rng, at, Service.ONE_STOP_SHOP, Locality(p), _OSS_PATHS, user)]
    event = rng.choices(("dossier_receive", "dossier_process", "dossier_return"), (4, 4, 2))[0]
    failed = rng.random() < 0.01
    return [AppRecord(
        at=at, service=Service.ONE_STOP_SHOP, where=Locality(p, w),
        host=host_name(Service.ONE_STOP_SHOP, p), event=event,
        result="failure" if failed else "success", level="error" if failed else "info",
        error_code=rng.choice(("OSS-500", "PROC_CONFIG")) if failed else None,
        user=people.officer(rng, w), latency_ms=_ms(rng, 80, 20_000),
        request_id=f"{rng.getrandbits(64):016x}",
        extra=(("procedure_code", rng.choice(("1.004227", "1.001612", "2.000908", "1.010812"))),
               ("dossier_id", f"H{p.code}.{w.code}-{at:%y%m%d}-{rng.randrange(10_000):04d}")),
    )]  # fmt: skip


def _app(rng: random.Random, at: datetime, service: Service, p: Province, w: Ward, event: str,
         error: str | None, **extra: object) -> AppRecord:  # fmt: skip
    return AppRecord(
        at=at, service=service, where=Locality(p, w), host=host_name(service, p), event=event,
        result="failure" if error else "success", level="warn" if error else "info",
        error_code=error, latency_ms=_ms(rng, 60, 15_000),
        request_id=f"{rng.getrandbits(64):016x}", extra=tuple(extra.items()),
    )  # fmt: skip


def _vneid(rng: random.Random, at: datetime, p: Province, w: Ward, wt: float) -> list[Record]:
    user, ip = people.citizen(rng, w, wt), people.ip(rng)
    out: list[Record] = []
    for step in ("authorize", "token", "userinfo"):
        roll = rng.random()
        error = "VNEID-401" if roll < 0.02 and step == "authorize" else (
            "TIMEOUT" if roll > 0.997 else None)  # fmt: skip
        rec = _app(rng, at, Service.VNEID, p, w, "login", error, step=step)
        out.append(_with(rec, user=user, ip=ip))
        if error:
            break
        at += timedelta(milliseconds=rng.randint(200, 4000))
    return out


def _otp(rng: random.Random, at: datetime, p: Province, w: Ward, wt: float) -> list[Record]:
    user, ip, carrier = people.citizen(rng, w, wt), people.ip(rng), people.carrier(rng)
    purpose = rng.choices(("login", "sign"), (3, 1))[0]
    common = {"carrier": carrier, "purpose": purpose}
    send_error = "SMS_TIMEOUT" if rng.random() < 0.005 else None
    out: list[Record] = [_with(_app(rng, at, Service.OTP, p, w, "otp_send", send_error, **common),
                               user=user, ip=ip)]  # fmt: skip
    if send_error:
        return out
    for _attempt in range(3):  # people mistype the code now and then, then get it right
        at += timedelta(seconds=rng.randint(8, 60))
        error = "OTP_INVALID" if rng.random() < 0.07 else None
        out.append(_with(_app(rng, at, Service.OTP, p, w, "otp_verify", error, **common),
                         user=user, ip=ip))  # fmt: skip
        if not error:
            break
    return out


def _national_db(rng: random.Random, at: datetime, p: Province, w: Ward, wt: float) -> list[Record]:
    db = rng.choices(("population", "land", "business", "civil_status"), (70, 10, 10, 10))[0]
    error = rng.choice(("DB_TIMEOUT", "NOT_FOUND")) if rng.random() < 0.006 else None
    op = {"population": "lookup_citizen", "land": "lookup_parcel", "business": "lookup_company",
          "civil_status": "lookup_record"}[db]  # fmt: skip
    rec = _app(rng, at, Service.NATIONAL_DB, p, w, "db_lookup", error, db=db, operation=op)
    return [_with(rec, user=people.officer(rng, w))]


#: The province's sync job runs every 5 minutes and pushes the dossiers changed since its last
#: run to the national portal; a push that fails (1 %) is tried again at the next run.
SYNC_PERIOD = timedelta(minutes=5)
SYNC_FAILURE = 0.01
DOSSIER_EVENTS = ("dossier_receive", "dossier_process", "dossier_return")


def synced(seed: int, oss: Iterable[Record], hour: datetime) -> list[Record]:
    """The sync records within the hour starting at ``hour`` of the one-stop-shop records
    ``oss`` (those of that hour and the hour before): every dossier the one-stop shop received,
    processed or returned successfully is pushed, under its own ``dossier_id``, at the job's
    next run (a few seconds into it), and again at the following run after a failed push.

    Each dossier's pushes come from a random stream of its own record, so any hour computes the
    same pushes whichever hour its dossier change fell in.
    """
    end = hour + HOUR
    out: list[Record] = []
    for rec in oss:
        if not isinstance(rec, AppRecord) or rec.event not in DOSSIER_EVENTS or rec.failed:
            continue
        ward = rec.where.ward
        if ward is None:
            continue
        rng = stream(seed, "sync", rec.request_id)
        at = rec.at
        while at < end:
            at = _next_run(at) + timedelta(milliseconds=rng.randrange(1000, 60_000))
            error = "SYNC_HTTP_502" if rng.random() < SYNC_FAILURE else None
            push = _app(rng, at, Service.PORTAL_SYNC, rec.where.province, ward,
                        "dossier_sync", error, target="dvc-quoc-gia",
                        records=rng.randint(1, 6), dossier_id=rec.get("dossier_id"))  # fmt: skip
            if hour <= at < end:
                out.append(push)
            if error is None:
                break
    out.sort(key=lambda r: r.at)
    return out


def _next_run(at: datetime) -> datetime:
    period = SYNC_PERIOD.total_seconds()
    epoch = at.timestamp()
    return datetime.fromtimestamp((epoch // period + 1) * period, tz=at.tzinfo)


#: Every run, the job writes one ``sync_run`` record for the province (success, with the communes
#: synced and failed) and one ``sync_run`` failure per commune it could not sync. A commune's
#: connection is lost now and then for a single run (:data:`SYNC_RUN_FAILURE`), and a run now and
#: then starts late (:data:`SYNC_LATE`, by 1.5-4 minutes: still within its period).
SYNC_RUN_FAILURE = 0.002
SYNC_LATE = 0.01
SYNC_TARGET = "dvc-quoc-gia"
SYNC_REASONS = (
    ("SYNC_DB_UNREACHABLE", "connection refused by the commune's one-stop-shop database"),
    ("SYNC_DB_TIMEOUT", "timed out reading the commune's one-stop-shop database"),
)
#: A run's records are written within this long of its start, whatever it meets.
_MAX_RUN = timedelta(seconds=50)


@dataclass(frozen=True, slots=True)
class SyncOutage:
    """The sync job cannot reach the communes ``wards`` (codes) in ``[start, end)``: each of
    their runs fails with ``reason`` (code, message). No wards: the job itself is stopped and
    writes no run record at all."""

    start: datetime
    end: datetime
    wards: frozenset[str] = frozenset()
    reason: tuple[str, str] = SYNC_REASONS[0]


def sync_runs(
    cat: Catalogue,
    seed: int,
    province: str,
    hour: datetime,
    outages: Sequence[SyncOutage] = (),
) -> list[Record]:
    """The run records of the province's sync job for the hour starting at ``hour``: one run
    every :data:`SYNC_PERIOD` (aligned on the clock), each with its own random stream, so any
    hour is the same whichever slice asks for it, and an outage changes only what it is about.
    """
    prov = cat.province(province)
    wards, _ = province_wards(cat, prov.code)
    host = host_name(Service.PORTAL_SYNC, prov)
    out: list[Record] = []
    run = hour
    while run < hour + HOUR:
        rng = stream(seed, "sync-run", prov.code, run.isoformat())
        active = [o for o in outages if o.start <= run < o.end]
        # Every draw is made whatever the outage, so the noise of other communes stays the same.
        late = rng.random() < SYNC_LATE
        delay = rng.randrange(90_000, 240_000) if late else rng.randrange(200, 4_000)
        lost = [(w, rng.choice(SYNC_REASONS)) for w in wards if rng.random() < SYNC_RUN_FAILURE]
        took = timedelta(milliseconds=rng.randrange(2_000, 20_000))
        if not any(not o.wards for o in active):
            blocked = {code: o.reason for o in active for code in o.wards}
            failed = dict(lost)
            failed.update({w: blocked[w.code] for w in wards if w.code in blocked})
            out.extend(_run(run, run + timedelta(milliseconds=delay), took, prov, wards, failed,
                            host))  # fmt: skip
        run += SYNC_PERIOD
    return out


def _run(
    run: datetime,
    began: datetime,
    took: timedelta,
    prov: Province,
    wards: Sequence[Ward],
    failed: dict[Ward, tuple[str, str]],
    host: str,
) -> list[Record]:
    """One run's records: a failure per commune not synced (a few seconds each, a connection
    refused is quick), then the province's summary when the run ends."""
    run_id = f"sync-{prov.code}-{run.astimezone(UTC):%Y%m%dT%H%MZ}"
    common = (("target", SYNC_TARGET), ("run_id", run_id))
    out: list[Record] = []
    step = min(timedelta(seconds=3), _MAX_RUN / (len(failed) + 1))
    at = began
    for ward, (code, text) in sorted(failed.items(), key=lambda item: item[0].code):
        at += step
        out.append(AppRecord(
            at=at, service=Service.PORTAL_SYNC, where=Locality(prov, ward), host=host,
            event="sync_run", result="failure", level="error", error_code=code, msg=text,
            latency_ms=int(step.total_seconds() * 1000), extra=common,
        ))  # fmt: skip
    end = min(at + took, began + _MAX_RUN)
    out.append(AppRecord(
        at=end, service=Service.PORTAL_SYNC, where=Locality(prov), host=host, event="sync_run",
        result="success", level="warn" if failed else "info",
        latency_ms=int((end - began).total_seconds() * 1000),
        extra=(*common, ("units_synced", len(wards) - len(failed)),
               ("units_failed", len(failed))),
    ))  # fmt: skip
    return out


def _payment(rng: random.Random, at: datetime, p: Province, w: Ward, wt: float) -> list[Record]:
    error = "PAY_DECLINED" if rng.random() < 0.02 else None
    rec = _app(rng, at, Service.PAYMENT, p, w, "payment", error)
    return [_with(rec, user=people.citizen(rng, w, wt), ip=people.ip(rng))]


def _with(rec: AppRecord, *, user: str | None = None, ip: str | None = None) -> AppRecord:
    return replace(rec, user=user, ip=ip)


MAKERS: dict[Service, Maker] = {
    Service.WEB_PORTAL: _web_portal,
    Service.NATIONAL_PORTAL: _national_portal,
    Service.ONE_STOP_SHOP: _one_stop_shop,
    Service.VNEID: _vneid,
    Service.OTP: _otp,
    Service.NATIONAL_DB: _national_db,
    Service.PAYMENT: _payment,
}
