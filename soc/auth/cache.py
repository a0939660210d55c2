"""A short-lived, in-process memory of credentials already checked in Elasticsearch.

Without it every API request pays a GET of its token or session document before any work. An
entry remembers, for at most ``SOC_AUTH_CACHE_SECONDS`` (5 s by default, 0 turns it off), the
state document a credential digest stood for (its user and, for a session, its CSRF token and
expiry). What it does not change:

* the role and provinces are still read from the users directory at every request, so a user
  removed from the YAML file is cut off at once;
* a session's expiry is still checked at every request;
* revoking a token or signing out in this process forgets the entry at once; in *another*
  process (a second uvicorn worker, the CLI) the revocation takes effect within the TTL.

Keys are the SHA-256 digests ``soc.auth.service`` already computes, never the secrets. The memory
is bounded (:data:`MAX_ENTRIES`); this module must not talk to Elasticsearch.
"""

from __future__ import annotations

import threading
import time
from typing import Generic, TypeVar

#: Most entries kept; past it the oldest are dropped (they are re-read from the store).
MAX_ENTRIES = 10_000

V = TypeVar("V")


class CredentialCache(Generic[V]):
    """``key -> value`` for ``ttl`` seconds (monotonic clock); thread-safe."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, V]] = {}

    def get(self, key: str) -> V | None:
        if self.ttl <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            if found[0] <= now:
                del self._entries[key]
                return None
            return found[1]

    def put(self, key: str, value: V) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                # Dicts keep insertion order: drop the oldest tenth in one go.
                for old in list(self._entries)[: MAX_ENTRIES // 10]:
                    del self._entries[old]
            self._entries[key] = (time.monotonic() + self.ttl, value)

    def forget(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
