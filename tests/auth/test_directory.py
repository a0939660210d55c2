"""The users directory: YAML users, scrypt passwords, demo users in development only."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from soc.auth import policy
from soc.auth import service as auth
from soc.auth.models import Role
from soc.config import load_settings
from soc.errors import ConfigError, NotAuthenticated


def test_passwords_are_salted_scrypt_hashes() -> None:
    one, two = auth.hash_password("s3cret!"), auth.hash_password("s3cret!")
    assert one != two
    assert "s3cret" not in one
    assert auth.verify_password("s3cret!", one)
    assert not auth.verify_password("s3cret?", one)
    assert not auth.verify_password("s3cret!", "garbage")


def test_users_file_errors_name_the_file_and_entry(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    path.write_text("users:\n  - name: a\n    role: admin\n  - name: b\n    role: wizard\n")
    with pytest.raises(ConfigError, match=r"users\.yaml: users\[2\]: role"):
        auth.load_directory(load_settings(auth_users_file=path))
    path.write_text("users:\n  - name: it\n    role: provincial_it\n")
    with pytest.raises(ConfigError, match=r"users\[1\] \(it\): provincial_it needs provinces"):
        auth.load_directory(load_settings(auth_users_file=path))


def test_demo_users_exist_only_when_asked_and_only_in_development() -> None:
    assert auth.load_directory(load_settings()).records == {}
    demo = auth.load_directory(load_settings(auth_demo_password=SecretStr("local-demo-pass")))
    assert demo.check_password("hanoi-it", "local-demo-pass").role is Role.PROVINCIAL_IT
    with pytest.raises(NotAuthenticated):
        demo.check_password("admin", "wrong")
    with pytest.raises(ConfigError, match="development only"):
        auth.load_directory(
            load_settings(environment="production", auth_demo_password=SecretStr("x" * 20))
        )


def test_placeholder_passwords_are_refused_in_production() -> None:
    policy.refuse_weak("changethis", load_settings())
    with pytest.raises(ConfigError, match="placeholder"):
        policy.refuse_weak("changethis", load_settings(environment="production"))
