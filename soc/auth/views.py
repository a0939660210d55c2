"""``/api/v1/auth``: dashboard login and logout, who am I, and API tokens.

Login (``soc.auth.flows.sign_in``: throttled, audited) sets an HttpOnly, SameSite=Strict session
cookie, ``Secure`` in production, and returns the CSRF token the dashboards
send back in ``X-CSRF-Token``. Tokens are shown once at creation; listing shows ids only. Anyone
signed in manages their own tokens; an admin may list and revoke everyone's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Cookie, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from soc import problems
from soc.auth import audit, flows
from soc.auth import service as auth
from soc.auth.models import Role, TokenInfo, User
from soc.deps import (
    SESSION_COOKIE,
    AnyUser,
    DirectoryDep,
    EsDep,
    IndicesDep,
    SettingsDep,
    client_ip,
)

router = APIRouter(prefix="/auth", tags=["auth"], responses=problems.RESPONSES)


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class LoginOut(BaseModel):
    user: User
    csrf_token: str


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field(min_length=1, max_length=200)


class TokenCreated(BaseModel):
    token: str = Field(description="Shown once: store it now.")
    info: TokenInfo


@router.post("/login", response_model=LoginOut, responses=problems.THROTTLED)
def login(
    body: LoginIn,
    es: EsDep,
    indices: IndicesDep,
    directory: DirectoryDep,
    settings: SettingsDep,
    request: Request,
    response: Response,
) -> LoginOut:
    """Sign in for the dashboards. Throttled per account and per address (429, Retry-After)."""
    now = auth.utcnow()
    user = flows.sign_in(es, indices, directory, settings, username=body.username,
                         password=body.password, ip=client_ip(request), now=now)  # fmt: skip
    secret, session = auth.create_session(es, indices, user, settings, now)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(settings.auth_session_ttl),
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure,
        path="/",
    )
    return LoginOut(user=user, csrf_token=session.csrf)


@router.post("/logout", status_code=204)
def logout(
    es: EsDep,
    indices: IndicesDep,
    user: AnyUser,
    response: Response,
    soc_session: Annotated[str | None, Cookie()] = None,
) -> None:
    if soc_session:
        auth.end_session(es, indices, soc_session)
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.get("/me", response_model=User)
def me(user: AnyUser) -> User:
    return user


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(
    body: TokenIn, es: EsDep, indices: IndicesDep, user: AnyUser, request: Request
) -> TokenCreated:
    now = auth.utcnow()
    secret, info = auth.create_token(es, indices, user, body.label, now)
    audit.record(
        es,
        indices,
        actor=user,
        action="token.create",
        target_type="token",
        target_id=info.id,
        provinces=list(user.provinces),
        now=now,
        ip=client_ip(request),
    )
    return TokenCreated(token=secret, info=info)


@router.get("/tokens", response_model=list[TokenInfo])
def list_tokens(es: EsDep, indices: IndicesDep, user: AnyUser) -> list[TokenInfo]:
    owner = None if user.role is Role.ADMIN else user.name
    return auth.list_tokens(es, indices, owner=owner)


@router.delete("/tokens/{token_id}", response_model=TokenInfo)
def revoke_token(
    token_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")],
    es: EsDep,
    indices: IndicesDep,
    user: AnyUser,
    request: Request,
) -> TokenInfo:
    now = auth.utcnow()
    owner = None if user.role is Role.ADMIN else user.name
    info = auth.revoke_token(es, indices, token_id, owner=owner, now=now)
    audit.record(
        es,
        indices,
        actor=user,
        action="token.revoke",
        target_type="token",
        target_id=token_id,
        provinces=[],
        now=now,
        ip=client_ip(request),
    )
    return info
