"""FastAPI dependencies as ``Annotated`` aliases: settings, the store, the caller and their role.

Credentials, in the order tried: ``Authorization: Bearer <API token>``, then the ``soc_session``
cookie of a dashboard login. A cookie-authenticated write must echo the session's CSRF token in
``X-CSRF-Token`` (a token-authenticated one needs none: browsers never send bearer tokens on their
own). :func:`require` turns a role list into a dependency; the role-by-route matrix is therefore
readable in each ``views.py``. This module must not query incidents or alerts itself.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from elasticsearch import Elasticsearch
from fastapi import Depends, Header, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, AwareDatetime

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


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _es(request: Request) -> Elasticsearch:
    es: Elasticsearch = request.app.state.es
    return es


def _indices(request: Request) -> Indices:
    indices: Indices = request.app.state.indices
    return indices


def _directory(request: Request) -> auth.Directory:
    directory: auth.Directory = request.app.state.directory
    return directory


SettingsDep = Annotated[Settings, Depends(_settings)]
EsDep = Annotated[Elasticsearch, Depends(_es)]
IndicesDep = Annotated[Indices, Depends(_indices)]
DirectoryDep = Annotated[auth.Directory, Depends(_directory)]


def _current_user(
    request: Request,
    es: EsDep,
    indices: IndicesDep,
    directory: DirectoryDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    session: Annotated[str | None, Depends(_cookie)],
) -> User:
    if bearer is not None and bearer.credentials:
        return auth.user_for_token(es, indices, directory, bearer.credentials)
    if session:
        found = auth.session_for(es, indices, directory, session, auth.utcnow())
        if request.method not in _SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), found.csrf.encode()):
                raise Forbidden(f"a signed-in write needs the session's {CSRF_HEADER} header")
        return found.user
    raise NotAuthenticated("sign in, or send an API token as 'Authorization: Bearer <token>'")


CurrentUser = Annotated[User, Depends(_current_user)]


def require(*roles: Role) -> Callable[[User], User]:
    """A dependency that lets only ``roles`` through (403 for other signed-in users)."""
    allowed = frozenset(roles)

    def check(user: CurrentUser) -> User:
        if user.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise Forbidden(f"this action needs one of the roles: {names}")
        return user

    return check


AnyUser = CurrentUser
Analyst = Annotated[User, Depends(require(Role.ADMIN, Role.ANALYST))]
Admin = Annotated[User, Depends(require(Role.ADMIN))]


def _if_match(if_match: Annotated[str | None, Header(max_length=64)] = None) -> str:
    if not if_match:
        raise PreconditionRequired(
            "this write needs an If-Match header with the ETag of the version you read"
        )
    return if_match.strip()


IfMatch = Annotated[str, Depends(_if_match)]


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range once converted to UTC") from None


#: A query time: must carry an offset, and is converted to UTC, which is what Elasticsearch stores
#: and the only form it parses whatever the offset (``+18:01`` is valid ISO but not for it).
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
