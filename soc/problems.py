"""RFC 9457 problem details: the one place that turns errors into HTTP responses.

Every error the API returns is ``application/problem+json`` with ``type``, ``title``, ``status``,
``detail`` and, for invalid input, ``errors`` naming each bad field (``body.to``, ``query.size``).
:class:`~soc.errors.SocError` subclasses map to statuses in :data:`STATUS`; Elasticsearch not
answering (refused, reset, timed out) is a 503 with ``Retry-After``; anything else is a bug and
becomes a logged 500 whose body reveals nothing. Input values are never echoed back (they are
attacker-controlled and may be huge); only field locations and messages are. This module must not
decide who may see what: a handler only formats the error the service raised.
"""

from __future__ import annotations

import logging
from typing import Any

from elastic_transport import ConnectionError as StoreConnectionError
from elastic_transport import ConnectionTimeout as StoreTimeout
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException

from soc import errors

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"

#: Most specific class first: the first ``isinstance`` match wins.
STATUS: tuple[tuple[type[errors.SocError], int], ...] = (
    (errors.NotAuthenticated, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.UnknownRuleError, 404),
    (errors.UnknownLocalityError, 404),
    (errors.InvalidTransition, 409),
    (errors.StaleVersion, 412),
    (errors.PreconditionRequired, 428),
    (errors.TooManyAttempts, 429),
    (errors.RequestError, 400),
    (errors.RuleError, 422),
    (errors.LocalityError, 400),
    (errors.ElasticsearchUnavailable, 503),
)


class FieldProblem(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """The body of every error response (RFC 9457)."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str = ""
    errors: list[FieldProblem] | None = None


#: OpenAPI ``responses`` for routers, so clients (and schemathesis) know every error shape.
RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": title, "content": {MEDIA_TYPE: {}}}
    for code, title in (
        (400, "Bad request"),
        (401, "No or invalid credentials"),
        (403, "Role not allowed"),
        (404, "Not found (or not in your provinces)"),
        (409, "Transition not allowed"),
        (412, "Stale If-Match"),
        (422, "Invalid input"),
        (428, "If-Match required"),
    )
}
#: The sign-in routes' extra answer: throttled, with ``Retry-After``.
THROTTLED: dict[int | str, dict[str, Any]] = {
    429: {
        "model": Problem,
        "description": "Too many failed sign-ins: wait Retry-After seconds",
        "content": {MEDIA_TYPE: {}},
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds."}},
    }
}

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    422: "Invalid input",
    428: "Precondition required",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


def problem(
    status: int,
    detail: str,
    *,
    field_errors: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        title=_TITLES.get(status, "Error"), status=status, detail=detail, errors=field_errors
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def status_of(exc: errors.SocError) -> int:
    return next((code for cls, code in STATUS if isinstance(exc, cls)), 500)


async def _soc_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.SocError)
    status = status_of(exc)
    if status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(exc, errors.TooManyAttempts):
        headers = {"Retry-After": str(exc.retry_after)}
    return problem(status, str(exc), headers=headers)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    found = [
        FieldProblem(field=".".join(str(p) for p in e.get("loc", ())), message=str(e.get("msg")))
        for e in exc.errors()
    ]
    names = ", ".join(f.field for f in found[:5])
    return problem(422, f"invalid input: {names}", field_errors=found)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return problem(exc.status_code, str(exc.detail), headers=http_headers(request, exc))


def http_headers(request: Request, exc: HTTPException) -> dict[str, str] | None:
    """The headers of an HTTP error; a 405's ``Allow`` lists every method the path has (the
    router names only the first route it tried)."""
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    return headers or None


def allowed_methods(request: Request) -> list[str]:
    """The methods of the resource at this request's path: of the routes whose template matches
    it, those with the fewest parameters (``/incidents/bulk`` is the bulk resource, not an
    incident called "bulk")."""
    path = request.url.path
    by_template: dict[str, set[str]] = {}
    for route in iter_route_contexts(request.app.routes):
        regex = getattr(route, "path_regex", None)
        if route.methods and route.path and regex is not None and regex.match(path):
            by_template.setdefault(route.path, set()).update(route.methods)
    if not by_template:
        return []
    fewest = min(template.count("{") for template in by_template)
    return sorted(
        {m for t, methods in by_template.items() if t.count("{") == fewest for m in methods}
    )


#: Seconds a client is asked to wait when Elasticsearch did not answer.
STORE_RETRY_AFTER = 5


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # No answer from Elasticsearch (refused, reset, timed out, every node down): the request was
    # fine and may be retried; the client already tried every node it knows.
    log.warning("%s %s: Elasticsearch did not answer: %s", request.method, request.url.path, exc)
    return problem(
        503,
        "the data store (Elasticsearch) did not answer in time; try again shortly",
        headers={"Retry-After": str(STORE_RETRY_AFTER)},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return problem(500, "internal error; it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.SocError, _soc_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(StoreConnectionError, _store_unavailable)
    app.add_exception_handler(StoreTimeout, _store_unavailable)
    app.add_exception_handler(Exception, _unexpected)
