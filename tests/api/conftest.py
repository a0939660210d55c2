"""The real app against the session's Elasticsearch: users from a YAML file, one API token each."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from soc.app import create_app
from soc.auth import service as auth
from soc.config import PROJECT_ROOT, Settings, load_settings
from soc.es.indices import Indices
from soc.es.templates import teardown

PASSWORD = "correct horse battery staple"
USERS: dict[str, dict[str, str | list[str]]] = {
    "admin": {"role": "admin"},
    "analyst": {"role": "analyst"},
    "it_right": {"role": "provincial_it", "provinces": ["01"]},
    "it_wrong": {"role": "provincial_it", "provinces": ["79"]},
}


#: Every test client signs in from one address ("testclient"), and schemathesis posts random
#: credentials by the hundred: the per-address throttle would soon refuse every later sign-in.
#: It is tested on an app of its own (tests/api/test_findings.py).
_SHARED_ADDRESS: dict[str, Any] = {"auth_login_address_attempts": 1_000_000}


@dataclass(frozen=True)
class Api:
    client: TestClient
    tokens: dict[str, str]
    settings: Settings
    indices: Indices
    es: Elasticsearch

    def headers(self, who: str, **extra: str) -> dict[str, str]:
        base = {} if who == "anonymous" else {"Authorization": f"Bearer {self.tokens[who]}"}
        return {**base, **extra}


def users_file(tmp_path: Path) -> Path:
    hashed = auth.hash_password(PASSWORD)
    path = tmp_path / "users.yaml"
    entries = [{"name": n, "password_hash": hashed, **spec} for n, spec in USERS.items()]
    path.write_text(yaml.safe_dump({"users": entries}), encoding="utf-8")
    return path


@contextmanager
def running_api(
    es: Elasticsearch, es_url: str, prefix: str, tmp_path: Path, **overrides: Any
) -> Iterator[Api]:
    """The app on its own index prefix; ``overrides`` are settings (``environment=...``)."""
    rules = tmp_path / "rules"  # uploads through the API must not write into the checkout
    shutil.copytree(PROJECT_ROOT / "rules", rules)
    settings = load_settings(
        es_url=es_url,
        index_prefix=prefix,
        var_dir=tmp_path,
        auth_users_file=users_file(tmp_path),
        rules_dir=rules,
        notify_routes_file=tmp_path / "routes.yaml",
        **{**_SHARED_ADDRESS, **overrides},
    )
    app = create_app(settings, es)
    indices = Indices(settings.index_prefix)
    with TestClient(app, raise_server_exceptions=False) as client:
        directory = app.state.directory
        tokens = {}
        for name in USERS:
            user = directory.user(name)
            tokens[name], _ = auth.create_token(es, indices, user, "tests", auth.utcnow())
        yield Api(client, tokens, settings, indices, es)


@pytest.fixture(scope="session")
def shared_api(
    es: Elasticsearch, es_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    """One app and prefix for the API tests, deleted afterwards.

    Installing templates and indices is the slow part of a test's set-up, so the API modules share
    one; each test makes its own incidents (and provinces it counts in) so they stay independent.
    """
    prefix = f"t{uuid.uuid4().hex[:10]}"
    try:
        with running_api(es, es_url, prefix, tmp_path_factory.mktemp("api")) as running:
            yield running
    finally:
        teardown(es, prefix)
