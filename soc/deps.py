"""FastAPI dependencies as ``Annotated`` aliases: settings, the store, the caller and their role.

Credentials, in the order tried: ``Authorization: Bearer <API token>``, then the ``soc_session``
cookie of a dashboard login. A cookie-authenticated write must echo the session's CSRF token in
``X-CSRF-Token`` (a token-authenticated one needs none: browsers never send bearer tokens on their
own). :func:`require` turns a role list into a dependency; the role-by-route matrix is therefore
readable in each ``views.py``. This module must not query incidents or alerts itself.

The dependencies here are ``async`` and do no I/O on the event loop: FastAPI runs every plain
``def`` dependency in its thread pool, one hop per dependency per request, which under load cost
more than the work. Reading a credential from Elasticsearch (not remembered by
``soc.auth.cache``) still goes to the thread pool.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated

from elasticsearch import Elasticsearch
from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, AwareDatetime, BeforeValidator

from soc.auth import service as auth
from soc.auth.models import Role, User
from soc.config import Settings
from soc.errors import Forbidden, NotAuthenticated, PreconditionRequired
from soc.es.indices import Indices

SESSION_COOKIE = "soc_session"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_bearer = HTTPBearer(auto_error=False, description="An API token (`soc auth token create`).")
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="Dashboard login.")


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _es(request: Request) -> Elasticsearch:
    es: Elasticsearch = request.app.state.es
    return es


async def _indices(request: Request) -> Indices:
    indices: Indices = request.app.state.indices
    return indices


async def _directory(request: Request) -> auth.Directory:
    directory: auth.Directory = request.app.state.directory
    return directory


SettingsDep = Annotated[Settings, Depends(_settings)]
EsDep = Annotated[Elasticsearch, Depends(_es)]
IndicesDep = Annotated[Indices, Depends(_indices)]
DirectoryDep = Annotated[auth.Directory, Depends(_directory)]


async def _current_user(
    request: Request,
    es: EsDep,
    indices: IndicesDep,
    directory: DirectoryDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    session: Annotated[str | None, Depends(_cookie)],
) -> User:
    if bearer is not None and bearer.credentials:
        secret = bearer.credentials
        user = auth.cached_token_user(indices, directory, secret)
        if user is None:
            user = await run_in_threadpool(auth.user_for_token, es, indices, directory, secret)
        return user
    if session:
        now = auth.utcnow()
        found = auth.cached_session(indices, directory, session, now)
        if found is None:
            found = await run_in_threadpool(auth.session_for, es, indices, directory, session, now)
        if request.method not in _SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), found.csrf.encode()):
                raise Forbidden(f"a signed-in write needs the session's {CSRF_HEADER} header")
        return found.user
    raise NotAuthenticated("sign in, or send an API token as 'Authorization: Bearer <token>'")


CurrentUser = Annotated[User, Depends(_current_user)]


def require(*roles: Role) -> Callable[[User], Awaitable[User]]:
    """A dependency that lets only ``roles`` through (403 for other signed-in users)."""
    allowed = frozenset(roles)

    async def check(user: CurrentUser) -> User:
        if user.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(f"this action needs one of the roles: {names}")
        return user

    return check


AnyUser = CurrentUser
Analyst = Annotated[User, Depends(require(Role.ADMIN, Role.ANALYST))]
Admin = Annotated[User, Depends(require(Role.ADMIN))]


#: The header's name as it appears in the OpenAPI schema (``soc.app`` marks it required there).
IF_MATCH = "if-match"


async def _if_match(
    if_match: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=64,
            description="The ETag of the version read (GET answers it).",
        ),
    ] = None,
) -> str:
    if not if_match:
        raise PreconditionRequired(
            "this write needs an If-Match header with the ETag of the version you read"
        )
    return if_match.strip()


IfMatch = Annotated[str, Depends(_if_match)]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


#: An ISO 8601 date and time as people and clients write it (``2026-11-21T08:00:00+07:00``).
_ISO_DATETIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}")


def _iso_only(value: object) -> object:
    # pydantic reads a number ("0.5", "1700000000") as Unix seconds; the API documents ISO 8601
    # date-times only, and a number in a date filter is far more likely a mistake than intended.
    if isinstance(value, str) and not _ISO_DATETIME.match(value):
        raise ValueError(
            "expected an ISO 8601 date and time with an offset, like 2026-11-21T08:00:00+07:00"
        )
    if not isinstance(value, str | datetime):
        raise ValueError("expected an ISO 8601 date and time with an offset")
    return value


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range once converted to UTC") from None


#: A query time: must carry an offset, and is converted to UTC, which is what Elasticsearch stores
#: and the only form it parses whatever the offset (``+18:01`` is valid ISO but not for it).
UtcDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_only), AfterValidator(_to_utc)]
