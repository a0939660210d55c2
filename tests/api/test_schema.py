"""Schemathesis against the app's own OpenAPI schema: no server error, no response off-schema.

Every operation is fuzzed with a bounded number of generated requests (``EXAMPLES`` each), as an
admin (who reaches the deepest code paths), against the real app and Elasticsearch.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.conftest import Api
from tests.api.seed import incident

EXAMPLES = 6


@pytest.fixture(scope="module")
def api(shared_api: Api) -> Api:
    return shared_api


def test_no_operation_errors_or_breaks_its_schema(api: Api) -> None:
    incident(api)  # something for the list, search and metrics to find
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", api.client.app)
    headers = api.headers("admin")
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=checks)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert failures == []
