"""Judge one bucket of one key against its baseline: which features deviate, and how surely.

Every test is a tail probability under the baseline (Poisson for volumes, binomial for ratios
and for the share of slow requests) *and* a minimum effect, so small counts
are handled honestly: a commune with 3 requests of which 1 failed has a binomial tail of several
percent, far above ``anomaly_alpha``, and fewer than ``anomaly_min_failures`` failures are never
a surge.
Silence (no events at all) is :mod:`detectors.anomaly.silence`'s business. No I/O here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

from detectors.anomaly.baseline import latency as latency_model
from detectors.anomaly.baseline.model import Baseline
from detectors.anomaly.features import LATENCY_RUNGS_MS, RATIOS, Features
from soc.alerts.anomaly import AnomalyKind

#: What each ratio's surge means to people, and the alert kind it raises.
RATIO_KINDS: dict[str, tuple[AnomalyKind, str]] = {
    "error_5xx": (AnomalyKind.ERROR_STORM, "share of 5xx server errors"),
    "access_denied": (AnomalyKind.ACCESS_DENIED_SURGE, "share of 401/403 access denied"),
    "failure": (AnomalyKind.FAILURE_SURGE, "share of failed operations"),
    "otp_verify_failure": (AnomalyKind.OTP_VERIFY_FAILURE, "share of failed OTP verifications"),
    "otp_send_failure": (AnomalyKind.OTP_SEND_FAILURE, "share of failed OTP sends"),
}
#: A volume must at least triple (or drop below a fifth) to matter, however sure the test is.
SURGE_FACTOR = 3.0
DROP_FACTOR = 0.2
#: A failure ratio must rise this much above its baseline (absolute) as well as double.
MIN_RATIO_RISE = 0.1
#: Latency: fewest events at or above a key's slow rung before a bucket is a slowdown (one slow
#: request, or two, is a user's heavy query), and the floor of a learnt share of slow events (the
#: ratios' floor).
MIN_SLOW_EVENTS = 3
MIN_SLOW_SHARE = 1e-4


@dataclass(frozen=True, slots=True)
class Deviation:
    """One feature of one bucket outside its band."""

    feature: str
    kind: AnomalyKind
    label: str
    observed: float
    expected: float
    low: float
    high: float
    p_value: float
    unit: str = ""
    events: int = 0

    @property
    def surprise(self) -> float:
        """``-log10`` of the tail probability: how many orders of magnitude it is unlikely."""
        return -math.log10(max(self.p_value, 1e-300))


def label_for(feature: str, service: str) -> str:
    if feature == "failure" and service == "vneid":
        return "VNeID login failure ratio"
    return RATIO_KINDS[feature][1]


def volume(
    row: Features, expected: float, alpha: float, dispersion: float = 1.0, min_events: int = 10
) -> Deviation | None:
    """Request volume far above, or far below (but not zero), what the hour of week brings.

    Quasi-Poisson: counts and expectation are divided by the key's dispersion, so clumpy
    traffic needs a proportionally bigger departure.
    """
    d = max(dispersion, 1.0)
    scaled = expected / d
    kind: AnomalyKind | None
    kind, p = None, 1.0
    # A surge needs volume as well as a ratio: 5 logins in a quiet night hour are one user.
    if row.count >= SURGE_FACTOR * max(expected, min_events):
        kind, p = (
            AnomalyKind.VOLUME_SURGE,
            float(stats.poisson.sf(row.count / d - 1, max(scaled, 1e-3))),
        )
    elif 0 < row.count <= DROP_FACTOR * expected:
        kind, p = AnomalyKind.TRAFFIC_DROP, float(stats.poisson.cdf(row.count / d, scaled))
    if kind is None or p >= alpha:
        return None
    # The band is only worked out for a deviation: scipy's quantiles are the costly part.
    low = d * float(stats.poisson.ppf(alpha, scaled)) if expected > 0 else 0.0
    high = d * float(stats.poisson.isf(alpha, scaled)) if expected > 0 else 0.0
    return Deviation(
        "count",
        kind,
        "requests in the bucket",
        row.count,
        expected,
        low,
        high,
        p,
        "events",
        row.count,
    )


def ratio(
    row: Features, name: str, base: Baseline, alpha: float, min_events: int, min_failures: int
) -> Deviation | None:
    """A failure-like ratio far above its baseline, with enough events to say so."""
    num, den = row.ratio(name)
    if den < min_events or num < min_failures:
        return None
    p0 = min(max(base.ratios.get(name, 0.01), 1e-4), 0.99)
    observed = num / den
    if observed < max(2 * p0, p0 + MIN_RATIO_RISE):
        return None
    p = float(stats.binom.sf(num - 1, den, p0))
    if p >= alpha:
        return None
    high = float(stats.binom.isf(alpha, den, p0)) / den
    kind = RATIO_KINDS[name][0]
    return Deviation(
        name, kind, label_for(name, row.key.service), observed, p0, 0.0, high, p, "ratio", den
    )


def latency(row: Features, base: Baseline, alpha: float) -> Deviation | None:
    """Too many of the bucket's events at or above some rung of the latency ladder
    (:mod:`detectors.anomaly.baseline.latency`): the key's slow rung (the one its training
    reached at most 1 % of the time) and every rung above it, where the tail is counted, and the
    rungs below it that at most a quarter of training reached, where a shift of the whole
    distribution is counted (a ramp: the median request past the usual 90th percentile, long
    before many pass the usual 99th). For each rung a binomial tail against its learnt share,
    with the ratios' minimum effect (the share at least doubles and rises
    :data:`MIN_RATIO_RISE`) and :data:`MIN_SLOW_EVENTS`; the most surprising rung, its tail
    multiplied by the rungs tried (Bonferroni). Counts, not a 95th percentile, so it holds at
    holiday and night volumes: 4 of 5 requests past the usual 1-in-700 is a slowdown; one slow
    request among ten normal ones is not, nor a busy hour's usual spread (issue 18)."""
    if base.slow_ms is None or not row.slower or row.slower[0] == 0:
        return None
    first, timed = latency_model.rung_index(base.slow_ms), row.slower[0]
    rungs = latency_model.shift_rungs(base.rung_shares, base.slow_ms)
    rungs += [(first + j, share) for j, share in enumerate(base.slow_shares)]
    best: tuple[float, int, float] | None = None
    for rung, share in rungs:
        slow = row.slower[rung]
        p0 = min(max(share, MIN_SLOW_SHARE), 0.5)
        if slow < MIN_SLOW_EVENTS or slow / timed < max(2 * p0, p0 + MIN_RATIO_RISE):
            continue
        p = min(1.0, float(stats.binom.sf(slow - 1, timed, p0)) * len(rungs))
        if best is None or p < best[0]:
            best = (p, rung, p0)
    if best is None or best[0] >= alpha:
        return None
    p, rung, p0 = best
    observed = row.slower[rung] / timed
    high = float(stats.binom.isf(alpha / len(rungs), timed, p0)) / timed
    return Deviation(
        "slow_share",
        AnomalyKind.SLOWDOWN,
        f"share of requests slower than {LATENCY_RUNGS_MS[rung]:,.0f} ms",
        observed,
        p0,
        0.0,
        high,
        p,
        "ratio",
        timed,
    )


#: Which kind names an alert when several features deviate at once: the most specific cause
#: first (a 5xx storm also raises the failure ratio; it is still an error storm).
PRIORITY = (
    AnomalyKind.ERROR_STORM,
    AnomalyKind.OTP_VERIFY_FAILURE,
    AnomalyKind.OTP_SEND_FAILURE,
    AnomalyKind.ACCESS_DENIED_SURGE,
    AnomalyKind.FAILURE_SURGE,
    AnomalyKind.SLOWDOWN,
    AnomalyKind.TRAFFIC_DROP,
    AnomalyKind.VOLUME_SURGE,
)


def primary(deviations: list[Deviation]) -> Deviation:
    """The deviation that names the alert (see :data:`PRIORITY`)."""
    return min(deviations, key=lambda d: PRIORITY.index(d.kind))


def judge(
    row: Features,
    base: Baseline,
    expected: float,
    *,
    alpha: float,
    min_events: int,
    min_failures: int,
) -> list[Deviation]:
    """Every deviating feature of ``row``, most surprising first. These run whether or not the
    live streaming detector (:mod:`detectors.anomaly.live`) is on: it judges 5-minute counts,
    which a small place's failure ratio cannot move far enough (issue 18)."""
    found = [latency(row, base, alpha)]
    found.append(volume(row, expected, alpha, base.dispersion, min_events))
    found += [ratio(row, name, base, alpha, min_events, min_failures) for name in RATIOS]
    return sorted((d for d in found if d is not None), key=lambda d: -d.surprise)


def score(deviations: list[Deviation], alpha: float) -> float:
    """Map the strongest surprise to [0, 1]: 0.5 at the alerting threshold, towards 1 beyond."""
    if not deviations:
        return 0.0
    threshold = -math.log10(alpha)
    strongest = max(d.surprise for d in deviations)
    return round(strongest / (strongest + threshold), 4)
