"""Counts for ``bench/pooled_volume.py``: the simulator's traffic as (commune, service) series.

Runs the simulator's own generator (``soc.simulate.traffic.hour_records``, the records a backfill
indexes) hour by hour for every province and service and counts the records that carry a commune,
per series and hour, plus five-minute counts for a fixed sample of series. ``portal-sync`` is
left out: its pushes are the one-stop shop's dossiers again (``traffic.synced``).

Two worlds, so the test is not the training data again: the *train* world is seed 1 with the
simulator's commune sizes; the *test* world is another seed whose every commune's size is
multiplied by its own log-normal factor (sigma 0.6, mean 1, fixed per ward code), so the sizes the
catalogue gives (urban ward, rural commune, city) no longer tell a commune's volume exactly, as
with real communes. Counts are cached as ``.npz`` under ``var/bench/pooled``.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from detectors.anomaly.pooled import SeriesMeta
from soc.localities import Catalogue, Province, Ward
from soc.services import Service
from soc.simulate import profile, traffic

HOUR = timedelta(hours=1)
SERVICES = tuple(s for s in Service if s is not Service.PORTAL_SYNC)
SIGMA = 0.6


@dataclass(frozen=True, slots=True)
class World:
    name: str
    seed: int
    start: datetime
    hours: int
    resized: bool


def series(cat: Catalogue) -> tuple[list[tuple[str, str]], list[SeriesMeta]]:
    """(ward code, service) of every series and its meta, in a fixed order."""
    keys: list[tuple[str, str]] = []
    metas: list[SeriesMeta] = []
    for province in cat.provinces:
        wards = cat.wards_of(province)
        city = province.division_type == "thanh_pho_trung_uong"
        for ward in wards:
            for service in SERVICES:
                keys.append((ward.code, service.value))
                metas.append(SeriesMeta(service.value, ward.division_type, city, len(wards)))
    return keys, metas


def size_factor(code: str) -> float:
    """A ward's own log-normal size factor in the test world (mean 1, fixed by its code)."""
    digest = int.from_bytes(hashlib.sha256(code.encode()).digest()[:8], "big")
    u1, u2 = (digest & 0xFFFFFFFF) / 2**32 + 1e-12, (digest >> 32) / 2**32
    z = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
    return math.exp(SIGMA * z - SIGMA**2 / 2.0)


def _resized(original: Callable[[Ward, Province], float]) -> Callable[[Ward, Province], float]:
    def weight(ward: Ward, province: Province) -> float:
        return original(ward, province) * size_factor(ward.code)

    return weight


def generate(
    cat: Catalogue, world: World, sample: np.ndarray, cache: Path
) -> tuple[np.ndarray, np.ndarray, float]:
    """Hourly counts (series, hours) and five-minute counts (sample, hours * 12) of a world, and
    the seconds their generation took (when first made)."""
    path = cache / f"{world.name}-{world.seed}-{world.start:%Y%m%d%H}-{world.hours}.npz"
    if path.exists():
        data = np.load(path)
        seconds = float(data["seconds"]) if "seconds" in data else math.nan
        return data["hourly"], data["fine"], seconds
    began = time.perf_counter()
    keys, _ = series(cat)
    index = {key: i for i, key in enumerate(keys)}
    fine_of = {int(s): j for j, s in enumerate(sample)}
    hourly = np.zeros((len(keys), world.hours), np.int32)
    fine = np.zeros((len(sample), world.hours * 12), np.int16)
    original = profile.ward_weight
    if world.resized:
        setattr(profile, "ward_weight", _resized(original))  # noqa: B010 (a module's function)
        setattr(traffic, "ward_weight", profile.ward_weight)  # noqa: B010
    profile.province_wards.cache_clear()
    try:
        for h in range(world.hours):
            hour = world.start + h * HOUR
            for province in cat.provinces:
                for service in SERVICES:
                    recs = traffic.hour_records(cat, world.seed, province.code, service, hour, 1.0)
                    for rec in recs:
                        ward = rec.where.ward
                        if ward is None:
                            continue
                        i = index[(ward.code, service.value)]
                        hourly[i, h] += 1
                        j = fine_of.get(i)
                        if j is not None:
                            minute = (rec.at - hour).total_seconds() // 300
                            fine[j, h * 12 + int(minute)] += 1
    finally:
        setattr(profile, "ward_weight", original)  # noqa: B010
        setattr(traffic, "ward_weight", original)  # noqa: B010
        profile.province_wards.cache_clear()
    cache.mkdir(parents=True, exist_ok=True)
    seconds = time.perf_counter() - began
    np.savez_compressed(path, hourly=hourly, fine=fine, seconds=np.array(seconds))
    return hourly, fine, seconds
