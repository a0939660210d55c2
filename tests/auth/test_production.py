"""Production refuses weak passwords wherever one enters; every secret compose asks for is read.

Issue 17, finding 5, and the pieces of finding 3 and 6 that need no Elasticsearch: the throttle's
backoff arithmetic and ``soc rules validate`` on hostile files.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr
from typer.testing import CliRunner

from soc.auth import policy
from soc.auth import service as auth
from soc.auth.throttle import Policy
from soc.cli import app
from soc.config import PROJECT_ROOT, Settings, load_settings
from soc.errors import ConfigError

runner = CliRunner()
GOOD = "correct horse battery staple"


def _users(tmp_path: Path, **passwords: str) -> Path:
    path = tmp_path / "users.yaml"
    entries = [
        {"name": name, "role": "admin", "password_hash": auth.hash_password(password)}
        for name, password in passwords.items()
    ]
    path.write_text(yaml.safe_dump({"users": entries}), encoding="utf-8")
    return path


def test_a_users_file_with_a_placeholder_password_is_refused_in_production(tmp_path: Path) -> None:
    path = _users(tmp_path, admin="changeme", lan=GOOD)
    assert set(auth.load_directory(load_settings(auth_users_file=path)).records) == {"admin", "lan"}
    with pytest.raises(ConfigError) as refused:
        auth.load_directory(load_settings(auth_users_file=path, environment="production"))
    message = str(refused.value)
    assert str(path) in message
    assert "admin" in message
    assert "lan" not in message
    assert "soc auth hash-password" in message
    named = _users(tmp_path, operator="operator")  # the user's own name as password
    with pytest.raises(ConfigError, match="operator"):
        auth.load_directory(load_settings(auth_users_file=named, environment="production"))
    fine = _users(tmp_path, admin=GOOD)
    assert auth.load_directory(load_settings(auth_users_file=fine, environment="production"))


@pytest.mark.parametrize("password", ["ChangeMe123", "x", "Password!2026", "aaaaaaaaaaaaaaaa"])
def test_hash_password_refuses_weak_passwords_in_production(password: str) -> None:
    typed = f"{password}\n{password}\n"
    refused = runner.invoke(app, ["auth", "hash-password"], input=typed,
                            env={"SOC_ENVIRONMENT": "production"})  # fmt: skip
    assert refused.exit_code == 1, refused.output
    assert "refusing this password in production" in refused.output
    assert "scrypt$" not in refused.output
    development = runner.invoke(app, ["auth", "hash-password"], input=typed,
                                env={"SOC_ENVIRONMENT": "development"})  # fmt: skip
    assert development.exit_code == 0
    assert "scrypt$" in development.output


def test_hash_password_accepts_a_passphrase_in_production() -> None:
    made = runner.invoke(app, ["auth", "hash-password"], input=f"{GOOD}\n{GOOD}\n",
                         env={"SOC_ENVIRONMENT": "production"})  # fmt: skip
    assert made.exit_code == 0, made.output
    hashed = made.output.strip().splitlines()[-1]
    assert auth.verify_password(GOOD, hashed)


def test_demo_users_are_refused_in_production_whatever_their_password() -> None:
    settings = load_settings(environment="production", auth_demo_password=SecretStr(GOOD))
    with pytest.raises(ConfigError, match="development only"):
        auth.load_directory(settings)


def test_the_policy_says_why() -> None:
    assert policy.weakness("ChangeMe123") == "it is a well-known placeholder"
    assert policy.weakness("short1!") == "it is shorter than 12 characters"
    assert policy.weakness("abababababababab") == "it has fewer than 5 different characters"
    assert policy.weakness("hanoi-it-2026-spring", user="hanoi-it") == "it contains the user name"
    assert policy.weakness(GOOD) is None


def test_every_soc_variable_compose_sets_is_a_setting() -> None:
    """docker-compose.yml must not demand a secret (SOC_SECRET_KEY) that no code reads."""
    text = (PROJECT_ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    named = set(re.findall(r"\b(SOC_[A-Z0-9_]+)\s*:", text))
    fields = {f"SOC_{name.upper()}" for name in Settings.model_fields}
    assert named
    assert named <= fields, named - fields


def test_backoff_doubles_from_the_free_attempts_up_to_the_cap() -> None:
    account = Policy(free=5, cap=60.0, forget=900.0)
    assert [account.delay(n) for n in range(1, 5)] == [0.0] * 4
    assert [account.delay(n) for n in range(5, 13)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert account.delay(10_000) == 60.0


HOSTILE = {
    "scalar.yml": "just a sentence\n",
    "list.yml": "- a\n- b\n",
    "documents.yml": "one\n---\ntwo\n",
    "deep.yml": "[" * 5000 + "]" * 5000 + "\n",
    "deep.tests.yaml": "{a: " * 5000 + "1" + "}" * 5000 + "\n",
}


def test_rules_validate_names_hostile_files_without_a_traceback(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(PROJECT_ROOT / "rules", rules)
    for name, text in HOSTILE.items():
        (rules / "web" / name).write_text(text, encoding="utf-8")
    shown = runner.invoke(app, ["rules", "validate"], env={"SOC_RULES_DIR": str(rules)})
    assert shown.exit_code == 1, shown.output
    assert shown.exception is None or isinstance(shown.exception, SystemExit)
    assert "Traceback" not in shown.output
    for name in HOSTILE:
        assert re.search(rf"error: \S*{re.escape(name)}:1: ", shown.output), name
