"""Schemathesis against the app's own OpenAPI schema, with every check it has, for every caller.

Schemathesis's own engine (what ``st run --checks all`` runs) drives the real app in process, as
admin, analyst, provincial IT of Hà Nội and of Hồ Chí Minh City, and anonymously: its examples,
coverage (boundaries, missing and wrong-typed parameters, unsupported methods) and fuzzing phases,
``EXAMPLES`` generated requests per operation and phase. Every built-in check is on: no server
error; status, content type, headers and body as documented; schema-valid input accepted and
invalid input refused; a missing required header refused; ``Allow`` on 405 exactly the
documented methods; authentication not ignored. The stateful phase is left out (its link
inference adds minutes and finds nothing the access matrix does not test).

Two expectations are this API's own and are configured, not skipped: a schema-valid versioned
write carries a generated ``If-Match``, which is stale (412), and a write without it needs it
(428, RFC 6585, the answer for a missing ``If-Match``); and a business rule may refuse
schema-valid input with a problem naming why (400 "page * size must stay within 10000", 409 a
transition the lifecycle forbids, 422 a rule file that does not compile); a sign-in the throttle
refuses is 429 (generated user names repeat).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import schemathesis
from elasticsearch import Elasticsearch
from fastapi import FastAPI
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema
from schemathesis.engine.recorder import CheckNode, ScenarioRecorder

from soc.auth import service as auth
from soc.es.templates import teardown
from tests.api.conftest import Api, running_api
from tests.api.seed import incident

WHO = ("admin", "analyst", "it_right", "it_wrong", "anonymous")
#: Generated requests per operation and phase: ~1,500 requests per caller, ~20 s each.
EXAMPLES = 5
#: A fixed seed keeps CI reproducible; set SOC_TEST_SCHEMATHESIS_SEED to explore other inputs.
SEED = int(os.environ.get("SOC_TEST_SCHEMATHESIS_SEED", "20261204"))


def _headers(api: Api, who: str) -> dict[str, str]:
    """A token of the run's own: schemathesis signs out and revokes tokens as it goes, which must
    not sign the other API tests' shared callers out."""
    if who == "anonymous":
        return {}
    app = api.client.app
    assert isinstance(app, FastAPI)  # TestClient types it as any ASGI app
    user = app.state.directory.user(who)
    token, _ = auth.create_token(api.es, api.indices, user, "schemathesis", auth.utcnow())
    return {"Authorization": f"Bearer {token}"}


def _config(api: Api, who: str) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "headers": _headers(api, who),
            "generation": {"max-examples": EXAMPLES},
            "phases": {"stateful": {"enabled": False}},
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": [
                        "2xx",
                        "400",
                        "401",
                        "403",
                        "404",
                        "409",
                        "412",
                        "422",
                        "429",
                    ]
                },
                "missing_required_header": {
                    "expected-statuses": ["400", "401", "403", "422", "428"]
                },
            },
        }
    )


@pytest.fixture(scope="module")
def api(es: Elasticsearch, es_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """An app and index prefix of this module's own, not the other API tests' shared one:
    schemathesis lists each caller's tokens and revokes the ids it finds (every caller's own
    tokens are its to revoke), which signed the shared callers out of every later API test."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    try:
        with running_api(es, es_url, prefix, tmp_path_factory.mktemp("schema")) as running:
            incident(running)  # something for the list, search and metrics to find
            yield running
    finally:
        teardown(es, prefix)


@pytest.mark.parametrize("who", WHO)
def test_every_operation_passes_every_check(api: Api, who: str) -> None:
    schema = schemathesis.openapi.from_asgi(
        "/api/v1/openapi.json", api.client.app, config=_config(api, who)
    )
    failures: dict[tuple[str, str], str] = {}
    cases = 0
    for event in from_schema(schema).execute():
        if isinstance(event, events.FatalError | events.NonFatalError):
            failures[("engine", type(event).__name__)] = str(getattr(event, "info", event))
        if not isinstance(event, events.ScenarioFinished):
            continue
        recorder = event.recorder
        cases += len(recorder.cases)
        for case_id, checks in recorder.checks.items():
            for check in checks:
                if check.status is Status.FAILURE and check.failure_info is not None:
                    failures.setdefault((recorder.label, check.name),
                                        _explain(recorder, case_id, check))  # fmt: skip
    assert cases > 500, "schemathesis generated too few requests to mean anything"
    assert failures == {}


def _explain(recorder: ScenarioRecorder, case_id: str, check: CheckNode) -> str:
    assert check.failure_info is not None
    failure = str(check.failure_info.failure)[:500]
    interaction = recorder.interactions.get(case_id)
    if interaction is None or interaction.response is None:
        return failure
    request = interaction.request
    return f"{failure} | {request.method} {request.uri[:300]} -> {interaction.response.status_code}"
