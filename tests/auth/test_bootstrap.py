"""``soc auth init``: the first admin from a secret file, idempotent, other users kept, and the
password never printed."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from soc.auth.service import verify_password
from soc.cli import app

runner = CliRunner()


def _init(users: Path, secret: Path, *extra: str) -> tuple[int, str]:
    env = {"SOC_AUTH_USERS_FILE": str(users), "SOC_ENVIRONMENT": "production"}
    result = runner.invoke(app, ["auth", "init", "--password-file", str(secret), *extra], env=env)
    return result.exit_code, result.output


def test_init_creates_then_keeps_then_updates_the_admin(tmp_path: Path) -> None:
    users, secret = tmp_path / "users.yaml", tmp_path / "secret"
    users.write_text(yaml.safe_dump({"users": [{"name": "hanoi-it", "role": "provincial_it",
                                                "provinces": ["01"]}]}))  # fmt: skip
    secret.write_text("first long password\n")
    assert _init(users, secret) == (0, f"admin admin created in {users}\n")
    assert _init(users, secret)[1].startswith("admin admin unchanged")
    secret.write_text("second long password")
    code, output = _init(users, secret)
    assert (code, "updated") == (0, output.split()[2])
    assert "second long password" not in output
    entries = {u["name"]: u for u in yaml.safe_load(users.read_text())["users"]}
    assert entries["hanoi-it"]["role"] == "provincial_it"  # other users kept
    assert verify_password("second long password", entries["admin"]["password_hash"])
    assert users.stat().st_mode & 0o077 == 0


def test_init_refuses_a_missing_file_and_a_short_password(tmp_path: Path) -> None:
    users, secret = tmp_path / "users.yaml", tmp_path / "secret"
    code, output = _init(users, secret)
    assert code == 1
    assert "cannot read the password file" in output
    secret.write_text("short")
    assert "at least 12 characters" in _init(users, secret)[1]
    assert not users.exists()
