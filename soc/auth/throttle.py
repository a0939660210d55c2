"""Sign-in throttling: per account and per source address, with exponential backoff.

Each failed sign-in counts against two keys: the account name and the source address. Below a
key's free allowance nothing happens; from then on every failure makes the key wait before its
next attempt, 1 s, 2 s, 4 s ... up to a cap. While a key waits, attempts are refused *without
checking the password* and without counting, so a guesser gets at most one guess per delay, and
the right password is refused too (90 wrong guesses then the right one must not sign in).

Why the two caps differ: the account key is what an attacker can aim at someone else's account,
so its delay is short (``SOC_AUTH_LOGIN_ACCOUNT_MAX_DELAY``, 60 s by default): a victim waits at
most that long after the attacker's last guess. The address key is the guesser's own, so it may
grow to ``SOC_AUTH_LOGIN_ADDRESS_MAX_DELAY`` (15 min). A success clears the account's count, not
the address's (an attacker with one valid account must not reset his address by signing in). A
key forgets its failures after ``SOC_AUTH_LOGIN_FORGET`` seconds without one.

State lives in ``<prefix>-state`` (one small document per key, compare-and-set updates) so every
``soc api`` process shares it. The address is the TCP peer: behind a reverse proxy it is the
proxy's, unless the ASGI server is told to trust ``X-Forwarded-For`` (uvicorn
``--forwarded-allow-ips``). This module must not check passwords or write the audit trail
(``soc.auth.flows`` does both).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from elasticsearch import Elasticsearch

from soc import timeutil
from soc.config import Settings
from soc.errors import TooManyAttempts
from soc.es.indices import Indices
from soc.es.state import Entry, StateIndex, StateKind

_FIRST_DELAY = 1.0
_CAS_TRIES = 5


@dataclass(frozen=True)
class Policy:
    """How one kind of key is throttled."""

    free: int  # failures allowed before the first delay
    cap: float  # longest delay, seconds
    forget: float  # seconds without a failure after which the count restarts

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failures in a row."""
        if failures < self.free:
            return 0.0
        return min(self.cap, _FIRST_DELAY * 2.0 ** min(failures - self.free, 40))


@dataclass(frozen=True)
class Key:
    """One throttled thing: ``kind`` is ``account`` or ``address``."""

    kind: str
    value: str
    policy: Policy

    @property
    def name(self) -> str:
        # Hashed: the account name is whatever a client typed, up to 128 characters.
        return hashlib.sha256(f"{self.kind}:{self.value}".encode()).hexdigest()


def keys(settings: Settings, *, username: str, address: str | None) -> list[Key]:
    forget = settings.auth_login_forget
    found = [
        Key(
            "account",
            username.casefold(),
            Policy(
                settings.auth_login_account_attempts, settings.auth_login_account_max_delay, forget
            ),
        )
    ]
    if address:
        found.append(
            Key(
                "address",
                address,
                Policy(
                    settings.auth_login_address_attempts,
                    settings.auth_login_address_max_delay,
                    forget,
                ),
            )
        )
    return found


def check(es: Elasticsearch, indices: Indices, found: list[Key], now: datetime) -> None:
    """Raise :class:`TooManyAttempts` when any key must still wait."""
    waits: list[tuple[float, str]] = []
    for key in found:
        state = _read(es, indices, key)
        if state is None:
            continue
        until = timeutil.parse(state.data["until"])
        if until > now:
            waits.append(((until - now).total_seconds(), key.kind))
    if waits:
        seconds, kind = max(waits)
        retry = max(1, math.ceil(seconds))
        what = "this account" if kind == "account" else "this address"
        raise TooManyAttempts(
            f"too many failed sign-ins for {what}: try again in {retry} s", retry_after=retry
        )


def failed(es: Elasticsearch, indices: Indices, found: list[Key], now: datetime) -> float:
    """Count a failure against every key; the longest delay it now imposes, in seconds."""
    return max((_count(es, indices, key, now) for key in found), default=0.0)


def succeeded(es: Elasticsearch, indices: Indices, found: list[Key]) -> None:
    """A good sign-in clears the account's failures (never the address's)."""
    for key in found:
        if key.kind == "account":
            StateIndex(es, indices).delete(StateKind.LOGIN_THROTTLE, key.name)


def _read(es: Elasticsearch, indices: Indices, key: Key) -> Entry | None:
    return StateIndex(es, indices).get(StateKind.LOGIN_THROTTLE, key.name)


def _count(es: Elasticsearch, indices: Indices, key: Key, now: datetime) -> float:
    store = StateIndex(es, indices)
    for _ in range(_CAS_TRIES):
        state = _read(es, indices, key)
        failures = 0
        if state is not None:
            last = timeutil.parse(state.data["last"])
            if (now - last).total_seconds() < key.policy.forget:
                failures = int(state.data["failures"])
        failures += 1
        delay = key.policy.delay(failures)
        until = now + timedelta(seconds=delay)
        data = {"failures": failures, "last": now.isoformat(), "until": until.isoformat()}
        entry = Entry(StateKind.LOGIN_THROTTLE, key.name, data, now, key=key.kind, expires=until)
        if state is None or state.version is None:
            stored = store.create(entry)
        else:
            stored = store.replace(entry, state.version)
        if not stored:
            continue  # another sign-in counted first: count again on its result
        return delay
    return key.policy.delay(key.policy.free)  # contended: still impose at least the first delay
