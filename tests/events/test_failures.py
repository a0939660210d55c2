"""The failure class of an event (``error.type``) is the same whatever code its source used."""

from __future__ import annotations

import pytest

from soc.events.failures import FailureClass, classify, failure_class


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"http": {"response": {"status_code": 504}}}, FailureClass.TIMEOUT),
        ({"http": {"response": {"status_code": 502}}}, FailureClass.SERVER_ERROR),
        ({"http": {"response": {"status_code": 401}}}, FailureClass.AUTH_REJECTED),
        ({"http": {"response": {"status_code": 404}}}, FailureClass.NOT_FOUND),
        ({"event": {"outcome": "failure"}, "error": {"code": "TIMEOUT"}}, FailureClass.TIMEOUT),
        (
            {"event": {"outcome": "failure"}, "error": {"code": "VNEID-502"}},
            FailureClass.SERVER_ERROR,
        ),
        (
            {"event": {"outcome": "failure"}, "error": {"code": "VNEID-401"}},
            FailureClass.AUTH_REJECTED,
        ),
        (
            {"event": {"outcome": "failure"}, "error": {"code": "OTP_INVALID"}},
            FailureClass.AUTH_REJECTED,
        ),
        (
            {"event": {"outcome": "failure"}, "error": {"code": "invalid_client"}},
            FailureClass.CONFIG,
        ),
        (
            {"event": {"outcome": "failure"}, "error": {"code": "SMS_DELIVERY_FAILED"}},
            FailureClass.DELIVERY,
        ),
        (
            {"event": {"outcome": "failure"}, "error": {"message": "Connection refused"}},
            FailureClass.REFUSED,
        ),
        ({"event": {"outcome": "failure"}}, FailureClass.OTHER),
    ],
)
def test_failures_are_classed_by_kind_not_code(doc: dict[str, object], expected: str) -> None:
    assert failure_class(doc) == expected


def test_an_event_that_did_not_fail_has_no_class() -> None:
    ok = {"event": {"outcome": "success"}, "http": {"response": {"status_code": 200}}}
    assert failure_class(ok) is None
    assert "error" not in classify(ok)


def test_classify_sets_error_type_and_keeps_the_code() -> None:
    doc = classify({"event": {"outcome": "failure"}, "error": {"code": "DB_TIMEOUT"}})
    assert doc["error"] == {"code": "DB_TIMEOUT", "type": "timeout"}
