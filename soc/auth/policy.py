"""What production accepts as a password, wherever one enters soc.

A password enters in three places: ``soc auth hash-password`` (the plain text, before hashing),
the users file (only scrypt hashes: each is tried against the well-known placeholders at start-up)
and sign-in (the plain text again: a weak one that matches its hash is refused as if wrong, and
the audit trail says why). Demo users are refused outright in production (``soc.auth.service``).
Development accepts anything, so tests and the demo stay simple. This module must not read files
or Elasticsearch.
"""

from __future__ import annotations

import re

from soc.config import Settings
from soc.errors import ConfigError

MIN_LENGTH = 12
#: Defaults shipped by templates and tutorials, compared after dropping digits and symbols, so
#: ``ChangeMe123`` and ``Password!`` count too.
PLACEHOLDERS = frozenset(
    {
        "changethis", "changeme", "password", "passw", "admin", "administrator", "secret",
        "letmein", "welcome", "qwerty", "default", "test", "soc", "example", "",
    }
)  # fmt: skip
#: What a users-file hash is tried against at start-up (each try costs one scrypt, ~40 ms).
PROBES = ("changeme", "changethis", "password", "admin", "secret", "ChangeMe123")


def weakness(password: str, *, user: str | None = None) -> str | None:
    """Why ``password`` is too weak for production, or None."""
    letters = re.sub(r"[^a-z]", "", password.casefold())
    if password.casefold() in PLACEHOLDERS or letters in PLACEHOLDERS:
        return "it is a well-known placeholder"
    if len(password) < MIN_LENGTH:
        return f"it is shorter than {MIN_LENGTH} characters"
    if len(set(password)) < 5:
        return "it has fewer than 5 different characters"
    if user and len(user) >= 3 and user.casefold() in password.casefold():
        return "it contains the user name"
    return None


def refuse_weak(password: str, settings: Settings, *, user: str | None = None) -> None:
    """Raise :class:`ConfigError` for a weak password in production."""
    if settings.environment != "production":
        return
    reason = weakness(password, user=user)
    if reason is not None:
        raise ConfigError(
            f"refusing this password in production: {reason}; use at least {MIN_LENGTH} "
            "characters that are not a default (a passphrase of four or more words works)"
        )
