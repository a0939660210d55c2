"""Who is asking: the users directory (YAML), passwords, API tokens and login sessions.

* Users and roles come from the YAML file named by ``SOC_AUTH_USERS_FILE``; passwords only as
  scrypt hashes (``soc auth hash-password`` makes one). Demo users are created only when
  ``SOC_AUTH_DEMO_PASSWORD`` is set, and only in development; production refuses them, as it refuses
  a users file with placeholder passwords (``soc.auth.policy``).
* API tokens and login sessions are random secrets shown once; ``<prefix>-state`` keeps only their
  SHA-256 (a high-entropy secret needs no slow hash), so a leaked index reveals no credential.
  Tokens are revocable; sessions expire and carry a CSRF token for the dashboards' forms.
* The role of a token or session is read from the directory at every request, so removing a user
  from the YAML file cuts off all their tokens at once.
* A credential found valid is remembered for a few seconds (``soc.auth.cache``,
  ``SOC_AUTH_CACHE_SECONDS``): revoking or signing out forgets it in this process at once, and
  other processes within that bound.

This module must not log secrets, and must not decide what a role may do (``soc.deps``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from elasticsearch import Elasticsearch
from pydantic import ValidationError

from soc.auth import policy
from soc.auth.cache import CredentialCache
from soc.auth.models import Role, TokenInfo, User, UserRecord
from soc.config import Settings
from soc.errors import ConfigError, NotAuthenticated, NotFound
from soc.es.indices import Indices
from soc.es.state import Entry, StateIndex, StateKind
from soc.yamlshape import YamlShapeError, documents

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}

#: Credentials checked lately: their state entries by ``<state index>:<document id>``
#: (``soc.auth.cache``); the API sets the TTL from the settings at start-up.
CACHE: CredentialCache[Entry] = CredentialCache(ttl=5.0)


def configure_cache(settings: Settings) -> None:
    CACHE.ttl = settings.auth_cache_seconds
    CACHE.clear()


def _cache_key(indices: Indices, kind: StateKind, digest: str) -> str:
    return f"{indices.state}:{kind.value}:{digest}"


# ------------------------------------------------------------------ passwords
def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    b64 = base64.b64encode
    return f"scrypt${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
        salt, digest = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    got = hashlib.scrypt(password.encode(), salt=salt, dklen=len(digest), **_SCRYPT)
    return hmac.compare_digest(got, digest)


# ------------------------------------------------------------------ directory
@dataclass(frozen=True)
class Directory:
    """The known users by name."""

    records: dict[str, UserRecord]

    def user(self, name: str) -> User | None:
        record = self.records.get(name)
        return record.user() if record else None

    def check_password(self, name: str, password: str) -> User:
        record = self.records.get(name)
        # Hash even for an unknown user so timing does not reveal which names exist.
        stored = record.password_hash if record and record.password_hash else _DUMMY_HASH
        if not verify_password(password, stored) or record is None:
            raise NotAuthenticated("wrong user name or password")
        return record.user()


_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def load_directory(settings: Settings) -> Directory:
    """Users from the YAML file and, in development only, the demo users."""
    records: dict[str, UserRecord] = {}
    if settings.auth_users_file is not None:
        records.update(_read_users(settings.auth_users_file))
        if settings.environment == "production":
            _refuse_placeholder_hashes(settings.auth_users_file, records)
    demo = settings.auth_demo_password
    if demo is not None:
        if settings.environment != "development":
            raise ConfigError(
                "SOC_AUTH_DEMO_PASSWORD is set while SOC_ENVIRONMENT=production: demo users are "
                "for development only; configure users in SOC_AUTH_USERS_FILE"
            )
        hashed = hash_password(demo.get_secret_value())
        for name, role, provinces in _DEMO_USERS:
            records.setdefault(
                name, UserRecord(name=name, role=role, provinces=provinces, password_hash=hashed)
            )
    return Directory(records)


_DEMO_USERS: tuple[tuple[str, Role, tuple[str, ...]], ...] = (
    ("admin", Role.ADMIN, ()),
    ("analyst", Role.ANALYST, ()),
    ("hanoi-it", Role.PROVINCIAL_IT, ("01",)),
)


def _read_users(path: Path) -> dict[str, UserRecord]:
    try:
        text = path.read_text(encoding="utf-8")
        documents(text)  # bounded nesting before the recursive loader
        raw = yaml.safe_load(text)
    except (OSError, yaml.YAMLError, YamlShapeError) as exc:
        raise ConfigError(f"{path}: cannot read the users file: {exc}") from None
    entries = raw.get("users") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: expected a mapping with a 'users' list")
    records: dict[str, UserRecord] = {}
    for n, entry in enumerate(entries, start=1):
        try:
            record = UserRecord.model_validate(entry)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"{path}: users[{n}]: {problems}") from None
        if record.role is Role.PROVINCIAL_IT and not record.provinces:
            raise ConfigError(f"{path}: users[{n}] ({record.name}): provincial_it needs provinces")
        if record.name in records:
            raise ConfigError(f"{path}: users[{n}]: user {record.name!r} is listed twice")
        records[record.name] = record
    return records


def _refuse_placeholder_hashes(path: Path, records: dict[str, UserRecord]) -> None:
    """Production: no user of the file may have a well-known placeholder (or their name) as
    password. One scrypt per probe and user, spread over the cores (~0.1 s a user on 2)."""
    hashed = [r for r in records.values() if r.password_hash]

    def weak(record: UserRecord) -> bool:
        stored = record.password_hash or ""
        return any(verify_password(p, stored) for p in (*policy.PROBES, record.name))

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        flagged = [r.name for r, bad in zip(hashed, pool.map(weak, hashed), strict=True) if bad]
    if flagged:
        raise ConfigError(
            f"{path}: refused in production: the password of {', '.join(flagged)} is a "
            "well-known placeholder (changeme, password, the user's own name ...); make a new "
            "hash with `soc auth hash-password`"
        )


# ------------------------------------------------------------------ tokens and sessions
def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    es: Elasticsearch, indices: Indices, user: User, label: str, now: datetime
) -> tuple[str, TokenInfo]:
    """A new API token for ``user``; the secret is returned once and never stored."""
    secret = "soc_" + secrets.token_urlsafe(32)
    digest = _digest(secret)
    info = TokenInfo(id=digest[:16], user=user.name, label=label, created=now.isoformat())
    entry = Entry(StateKind.API_TOKEN, digest, info.model_dump(), now, key=info.id, owner=user.name)
    StateIndex(es, indices).put(entry, refresh=True)
    return secret, info


def list_tokens(es: Elasticsearch, indices: Indices, *, owner: str | None) -> list[TokenInfo]:
    flt = [] if owner is None else [{"term": {"owner": owner}}]
    found = StateIndex(es, indices).find(StateKind.API_TOKEN, *flt)
    return [TokenInfo.model_validate(e.data) for e in found]


def revoke_token(
    es: Elasticsearch, indices: Indices, token_id: str, *, owner: str | None, now: datetime
) -> TokenInfo:
    """Revoke by public id; ``owner`` limits it to one user's tokens (None: an admin)."""
    flt: list[dict[str, Any]] = [{"term": {"key": token_id}}]
    if owner is not None:
        flt.append({"term": {"owner": owner}})
    state = StateIndex(es, indices)
    found = state.find(StateKind.API_TOKEN, *flt, size=1)
    if not found:
        raise NotFound(f"no token {token_id!r}")
    info = TokenInfo.model_validate(found[0].data).model_copy(update={"revoked": True})
    CACHE.forget(_cache_key(indices, StateKind.API_TOKEN, found[0].name))
    state.put(replace(found[0], data=info.model_dump(), updated=now), refresh=True)
    return info


def cached_token_user(indices: Indices, directory: Directory, secret: str) -> User | None:
    """The user of a token remembered valid, without I/O; None when it is not remembered (then
    :func:`user_for_token` reads the store)."""
    found = CACHE.get(_cache_key(indices, StateKind.API_TOKEN, _digest(secret)))
    if found is None:
        return None
    user = directory.user(found.data["user"])
    if user is None:
        raise NotAuthenticated("invalid or revoked API token")
    return user


def user_for_token(es: Elasticsearch, indices: Indices, directory: Directory, secret: str) -> User:
    digest = _digest(secret)
    key = _cache_key(indices, StateKind.API_TOKEN, digest)
    found = CACHE.get(key)
    if found is None:
        found = StateIndex(es, indices).get(StateKind.API_TOKEN, digest)
        if found is None or found.data.get("revoked"):
            raise NotAuthenticated("invalid or revoked API token")
        CACHE.put(key, found)
    user = directory.user(found.data["user"])
    if user is None:
        raise NotAuthenticated("invalid or revoked API token")
    return user


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str


def create_session(
    es: Elasticsearch, indices: Indices, user: User, settings: Settings, now: datetime
) -> tuple[str, Session]:
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    expires = now + timedelta(seconds=settings.auth_session_ttl)
    data = {"user": user.name, "csrf": csrf}
    entry = Entry(StateKind.SESSION, _digest(secret), data, now, owner=user.name, expires=expires)
    StateIndex(es, indices).put(entry)
    return secret, Session(user, csrf)


def cached_session(
    indices: Indices, directory: Directory, secret: str, now: datetime
) -> Session | None:
    """A session remembered valid, without I/O; None when it is not remembered (then
    :func:`session_for` reads the store)."""
    found = CACHE.get(_cache_key(indices, StateKind.SESSION, _digest(secret)))
    return None if found is None else _session_of(found, directory, now)


def _session_of(found: Entry, directory: Directory, now: datetime) -> Session:
    user = directory.user(found.data["user"])
    if user is None or found.expires is None or found.expires <= now:
        raise NotAuthenticated("session expired or signed out; sign in again")
    return Session(user, found.data["csrf"])


def session_for(
    es: Elasticsearch, indices: Indices, directory: Directory, secret: str, now: datetime
) -> Session:
    digest = _digest(secret)
    key = _cache_key(indices, StateKind.SESSION, digest)
    found = CACHE.get(key)
    if found is None:
        found = StateIndex(es, indices).get(StateKind.SESSION, digest)
        if found is None:
            raise NotAuthenticated("session expired or signed out; sign in again")
        CACHE.put(key, found)
    return _session_of(found, directory, now)


def end_session(es: Elasticsearch, indices: Indices, secret: str) -> None:
    digest = _digest(secret)
    CACHE.forget(_cache_key(indices, StateKind.SESSION, digest))
    StateIndex(es, indices).delete(StateKind.SESSION, digest)


def utcnow() -> datetime:
    return datetime.now(UTC)
