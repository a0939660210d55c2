"""The first admin of a new installation: ``soc auth init`` writes them into the users file.

A deployment cannot log in before someone has a password, and a password typed into a compose
file would be a secret in the file. So the setup step reads the admin's password from a secret
file (Docker/Kubernetes secrets are files) and writes its scrypt hash into
``SOC_AUTH_USERS_FILE``, keeping every other user. Running it again changes nothing unless the
password changed. It must not print or log the password.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml

from soc.auth.models import Role
from soc.auth.service import hash_password, verify_password
from soc.errors import ConfigError

MIN_LENGTH = 12
Outcome = Literal["created", "updated", "unchanged"]


def read_secret(path: Path) -> str:
    """A password from a secret file (one line; a trailing newline is not part of it)."""
    try:
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"cannot read the password file {path}: {exc.strerror}") from None
    if len(value) < MIN_LENGTH:
        raise ConfigError(f"{path}: the admin password must have at least {MIN_LENGTH} characters")
    return value


def init_admin(users_file: Path, name: str, password: str) -> Outcome:
    """Make ``name`` an admin with ``password`` in ``users_file``; other users are kept."""
    entries = _entries(users_file)
    for n, entry in enumerate(entries):
        if isinstance(entry, dict) and entry.get("name") == name:
            stored = str(entry.get("password_hash") or "")
            if entry.get("role") == Role.ADMIN.value and verify_password(password, stored):
                return "unchanged"
            entries[n] = {
                **entry,
                "role": Role.ADMIN.value,
                "password_hash": hash_password(password),
            }
            _write(users_file, entries)
            return "updated"
    entries.append(
        {"name": name, "role": Role.ADMIN.value, "password_hash": hash_password(password)}
    )
    _write(users_file, entries)
    return "created"


def _entries(users_file: Path) -> list[Any]:
    if not users_file.exists():
        return []
    try:
        raw = yaml.safe_load(users_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{users_file}: cannot read the users file: {exc}") from None
    if raw is None:
        return []
    if not isinstance(raw, dict) or not isinstance(raw.get("users"), list):
        raise ConfigError(f"{users_file}: expected a mapping with a 'users' list")
    return list(raw["users"])


def _write(users_file: Path, entries: list[Any]) -> None:
    users_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = users_file.with_suffix(users_file.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # hashes only, still private
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("# Users and roles of soc (docs/api.md); `soc auth init` wrote the admin.\n")
        yaml.safe_dump({"users": entries}, fh, sort_keys=False, allow_unicode=True)
    tmp.replace(users_file)
