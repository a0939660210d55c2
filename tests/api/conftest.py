"""The real app against the session's Elasticsearch: users from a YAML file, one API token each."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from elasticsearch import Elasticsearch
from fastapi.testclient import TestClient

from soc.app import create_app
from soc.auth import service as auth
from soc.config import Settings, load_settings
from soc.es.indices import Indices

PASSWORD = "correct horse battery staple"
USERS = {
    "admin": {"role": "admin"},
    "analyst": {"role": "analyst"},
    "it_right": {"role": "provincial_it", "provinces": ["01"]},
    "it_wrong": {"role": "provincial_it", "provinces": ["79"]},
}


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


@pytest.fixture
def api(es: Elasticsearch, settings: Settings, tmp_path: Path) -> Iterator[Api]:
    settings = load_settings(
        es_url=settings.es_url,
        index_prefix=settings.index_prefix,
        var_dir=tmp_path,
        auth_users_file=users_file(tmp_path),
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
