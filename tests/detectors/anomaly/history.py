"""Seasonal test traffic for the anomaly tests: a few communes, known rates, known incidents.

Traffic is Poisson per hour with a day/night profile in Vietnam time (UTC+7), small error rates,
and a ``soc.collector.id`` per commune; collectors send a heartbeat every five minutes. Everything
is seeded, so a test sees the same events on every run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from soc import timeutil
from soc.localities import Ward, catalogue

HOUR = timedelta(hours=1)


def iso(when: datetime) -> str:
    return timeutil.iso(when)


def daytime(when: datetime) -> bool:
    local_hour = (when.astimezone(UTC).hour + 7) % 24
    return 7 <= local_hour < 21


@dataclass(frozen=True)
class Series:
    """One commune and service with its traffic profile."""

    ward: Ward
    service: str
    collector: str
    day_rate: float
    night_rate: float
    error_rate: float = 0.01

    def rate(self, hour: datetime) -> float:
        return self.day_rate if daytime(hour) else self.night_rate


def event(
    s: Series,
    at: datetime,
    n: int,
    *,
    status: int = 200,
    failed: bool = False,
    duration_ms: float = 200.0,
) -> dict[str, Any]:
    province = catalogue().province(s.ward.province_code)
    body: dict[str, Any] = {
        "@timestamp": iso(at),
        "event": {
            "kind": "event",
            "dataset": f"{s.service}.access",
            "outcome": "failure" if failed or status >= 400 else "success",
            "duration": int(duration_ms * 1e6),
        },
        "service": {"name": s.service},
        "locality": {
            "province": {"code": province.code, "name": province.name},
            "ward": {"code": s.ward.code, "name": s.ward.name},
        },
        "user": {"name": f"user{n % 50}"},
        "source": {"ip": f"10.1.{n % 7}.{n % 200 + 1}"},
        "soc": {"collector": {"id": s.collector}},
        "labels": {"seq": str(n)},
    }
    if s.service == "otp-gateway":
        body["event"]["action"] = "otp-verify" if n % 2 else "otp-send"
    else:
        body["http"] = {"response": {"status_code": status}}
    return body


def traffic(
    s: Series, start: datetime, end: datetime, seed: int, *, error_rate: float | None = None
) -> Iterator[dict[str, Any]]:
    """Normal traffic of ``s`` over ``[start, end)``; ``error_rate`` overrides its failures."""
    rng = np.random.default_rng([seed, int(s.ward.code), len(s.service)])
    rate = s.error_rate if error_rate is None else error_rate
    hour = start
    while hour < end:
        span = min(HOUR, end - hour)
        for i in range(int(rng.poisson(s.rate(hour) * (span / HOUR)))):
            at = hour + span * float(rng.random())
            bad = bool(rng.random() < rate)
            status = 500 if bad else (403 if rng.random() < 0.02 else 200)
            dur = float(rng.lognormal(np.log(200), 0.3))
            yield event(
                s, at, int(hour.timestamp()) * 1000 + i, status=status, failed=bad, duration_ms=dur
            )
        hour += span


def heartbeats(
    collector: str, province: str, start: datetime, end: datetime
) -> Iterator[dict[str, Any]]:
    at = start
    while at < end:
        yield {
            "@timestamp": iso(at),
            "event": {"kind": "metric", "dataset": "collector.heartbeat"},
            "soc": {"collector": {"id": collector}},
            "locality": {"province": {"code": province}},
        }
        at += timedelta(minutes=5)


def wards(province: str, count: int) -> list[Ward]:
    return catalogue().wards_of(province)[:count]
