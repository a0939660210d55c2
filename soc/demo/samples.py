"""A few hundred realistic sample events for real localities, deterministic under a seed.

Until the simulator lands this is what the main-job command indexes so a new user sees real
documents in the schema. It is *not* the simulator: no rhythm, no scenarios, no ground truth.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from soc import timeutil
from soc.localities import Catalogue, Locality
from soc.services import Service

CARRIERS = ("viettel", "vinaphone", "mobifone")
AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 Chrome/130.0 Mobile Safari",
)
PATHS = ("/", "/dich-vu-cong", "/ho-so/tra-cuu", "/thu-tuc/1.004227", "/dang-nhap", "/thanh-toan")


def sample_events(
    catalogue: Catalogue, *, count: int = 300, seed: int = 7, end: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """``count`` events spread over the hour before ``end`` (default: now, UTC)."""
    rng = random.Random(seed)
    end = end or datetime.now(UTC)
    wards = catalogue.wards
    makers = (_access, _vneid, _otp, _national_db, _sync)
    for i in range(count):
        ward = rng.choice(wards)
        where = Locality(catalogue.province_of(ward), ward)
        at = end - timedelta(seconds=rng.uniform(0, 3600))
        event = makers[i % len(makers)](rng, where)
        yield _envelope(at, where) | event


def _envelope(at: datetime, where: Locality) -> dict[str, Any]:
    return {
        "@timestamp": timeutil.iso(at),
        **where.to_ecs(),
        "labels": {"origin": "soc-demo-sample"},
    }


def _ip(rng: random.Random) -> str:
    return f"113.{rng.randint(160, 190)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _access(rng: random.Random, where: Locality) -> dict[str, Any]:
    status = rng.choices((200, 302, 404, 401, 403, 500, 503), (80, 6, 6, 3, 2, 2, 1))[0]
    path = rng.choice(PATHS)
    service = rng.choice((Service.ONE_STOP_SHOP, Service.WEB_PORTAL, Service.NATIONAL_PORTAL))
    return {
        "event": {
            "kind": "event", "category": ["web"], "type": ["access"],
            "dataset": f"{service.value}.access",
            "outcome": "success" if status < 400 else "failure",
        },
        "service": {"name": service.value},
        "http": {"request": {"method": "GET"}, "response": {"status_code": status}},
        "url": {"original": path, "path": path},
        "source": {"ip": _ip(rng)},
        "user_agent": {"original": rng.choice(AGENTS)},
    }  # fmt: skip


def _vneid(rng: random.Random, where: Locality) -> dict[str, Any]:
    ok = rng.random() > 0.05
    event: dict[str, Any] = {
        "event": {
            "kind": "event", "category": ["authentication"], "type": ["start"],
            "action": "login", "dataset": "vneid.auth",
            "outcome": "success" if ok else "failure",
        },
        "service": {"name": Service.VNEID.value},
        "user": {"name": f"citizen{rng.randint(1, 99999):05d}"},
        "soc": {"vneid": {"step": "token"}},
        "source": {"ip": _ip(rng)},
    }  # fmt: skip
    if not ok:
        event["error"] = {"code": rng.choice(("invalid_grant", "timeout", "access_denied"))}
    return event


def _otp(rng: random.Random, where: Locality) -> dict[str, Any]:
    action = rng.choice(("otp-send", "otp-verify"))
    ok = rng.random() > 0.08
    return {
        "event": {
            "kind": "event", "category": ["authentication"], "action": action,
            "dataset": "otp-gateway.sms", "outcome": "success" if ok else "failure",
        },
        "service": {"name": Service.OTP.value},
        "user": {"name": f"citizen{rng.randint(1, 99999):05d}"},
        "soc": {"otp": {"carrier": rng.choice(CARRIERS), "purpose": "login"}},
    }  # fmt: skip


def _national_db(rng: random.Random, where: Locality) -> dict[str, Any]:
    ok = rng.random() > 0.03
    return {
        "event": {
            "kind": "event", "category": ["database"], "action": "db-lookup",
            "dataset": "national-db.lookup", "outcome": "success" if ok else "failure",
            "duration": rng.randint(40, 900) * 1_000_000,
        },
        "service": {"name": Service.NATIONAL_DB.value},
        "soc": {"db": {"name": "population", "operation": "lookup"}},
    }  # fmt: skip


def _sync(rng: random.Random, where: Locality) -> dict[str, Any]:
    ok = rng.random() > 0.04
    return {
        "event": {
            "kind": "event", "category": ["network"], "action": "dossier-sync",
            "dataset": "portal-sync.sync", "outcome": "success" if ok else "failure",
        },
        "service": {"name": Service.PORTAL_SYNC.value},
        "soc": {"sync": {"target": "national-portal", "records": rng.randint(1, 40)}},
    }  # fmt: skip
