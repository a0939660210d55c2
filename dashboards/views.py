"""Mount the console into the app: its routers, ``/static``, login/logout and HTML error pages.

:func:`install` is the one call ``soc.app.create_app`` makes. Errors on console pages become HTML
pages (a missing session becomes a redirect to the login page); errors under ``/api/`` keep their
problem-details JSON, so the API's contract is untouched. Every HTML response gets a strict Content
Security Policy as a second line of defence behind autoescaping. Routes here only validate and call
``soc.auth`` services.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dashboards import admin, board, i18n, incident, triage
from dashboards.pages import (
    HERE,
    LANG_COOKIE,
    TZ_COOKIE,
    PageDep,
    form,
    read_form,
    render,
    safe_next,
)
from soc import problems, timezones
from soc.auth import flows
from soc.auth import service as auth
from soc.config import Settings
from soc.deps import SESSION_COOKIE, DirectoryDep, EsDep, IndicesDep, SettingsDep, client_ip
from soc.errors import LoginRequired, NotAuthenticated, SocError, TooManyAttempts

LOGIN_CSRF_COOKIE = "soc_login_csrf"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    """Add the console's pages, static files and HTML error handling to ``app``."""
    # A fresh router per app: create_app may run many times in one process (tests, benchmarks).
    console = APIRouter(include_in_schema=False)
    for part in (router, board.router, triage.router, incident.router, admin.router):
        console.include_router(part)
    app.include_router(console)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for kind in (SocError, RequestValidationError, HTTPException):
        api_handler = app.exception_handlers[kind]
        app.add_exception_handler(kind, _html_errors(api_handler))

    app.add_middleware(_HtmlHeaders)


class _HtmlHeaders:
    """The Content Security Policy and its companions on every HTML response.

    A plain ASGI middleware: ``@app.middleware("http")`` wrapped every request, the API's too, in
    a task group and two memory streams, the largest middleware share of the incident list's time
    in a profile under load (``bench/api_rounds.py``).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if headers.get("content-type", "").startswith("text/html"):
                    headers["Content-Security-Policy"] = CSP
                    headers["X-Content-Type-Options"] = "nosniff"
                    headers["Referrer-Policy"] = "same-origin"
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, sending)


Handler = Callable[[Request, Exception], Awaitable[Response]]


def _html_errors(api_handler: Callable[..., object]) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            response = await api_handler(request, exc)  # type: ignore[misc]
            assert isinstance(response, Response)
            return response
        if isinstance(exc, LoginRequired):
            target = quote(safe_next(request.url.path), safe="/")
            return RedirectResponse(f"/login?next={target}", status_code=303)
        headers: dict[str, str] | None = None
        if isinstance(exc, SocError):
            status, detail = problems.status_of(exc), str(exc)
        elif isinstance(exc, HTTPException):
            status, detail = exc.status_code, str(exc.detail)
            headers = problems.http_headers(request, exc)
        else:
            status, detail = 422, "invalid input: check the filters and the form"
        lang = i18n.pick(request.cookies.get(LANG_COOKIE))
        page = render(None, "error.html", status, status_code=status, detail=detail)
        page.headers.update(headers or {})
        page.set_cookie(LANG_COOKIE, lang, samesite="strict")
        return page

    return handle


# ----------------------------------------------------------------------------- login
def _secure(settings: Settings) -> bool:
    return settings.cookie_secure


@router.get("/login")
def login_page(
    settings: SettingsDep, next_: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    token = secrets.token_urlsafe(24)
    page = render(None, "login.html", csrf=token, next=safe_next(next_), failed=False)
    _login_cookie(page, token, secure=_secure(settings))
    return page


def _login_cookie(response: Response, token: str, *, secure: bool) -> None:
    # Login CSRF: a double-submit cookie, because there is no session to hold a token yet.
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure, path="/login"
    )


@router.post("/login")
async def login(
    request: Request,
    es: EsDep,
    indices: IndicesDep,
    directory: DirectoryDep,
    settings: SettingsDep,
) -> Response:
    posted = await read_form(request)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    sent = posted.get("csrf_token")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        token = secrets.token_urlsafe(24)
        page = render(None, "login.html", 403, csrf=token, next="/", failed=True)
        _login_cookie(page, token, secure=_secure(settings))
        return page
    now = auth.utcnow()
    try:
        user = flows.sign_in(
            es, indices, directory, settings, username=posted.get("username"),
            password=posted.get("password"), ip=client_ip(request), now=now,
        )  # fmt: skip
    except (NotAuthenticated, TooManyAttempts) as exc:
        token = secrets.token_urlsafe(24)
        wait = exc.retry_after if isinstance(exc, TooManyAttempts) else None
        page = render(None, "login.html", 429 if wait else 401, csrf=token,
                      next=posted.get("next"), failed=True, retry_after=wait)  # fmt: skip
        if wait:
            page.headers["Retry-After"] = str(wait)
        _login_cookie(page, token, secure=_secure(settings))
        return page
    secret, _ = auth.create_session(es, indices, user, settings, now)
    response = RedirectResponse(safe_next(posted.get("next")), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(settings.auth_session_ttl),
        httponly=True,
        samesite="strict",
        secure=_secure(settings),
        path="/",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, page: PageDep) -> Response:
    await form(request, page)
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        auth.end_session(page.es, page.indices, secret)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/lang/{code}")
def language(code: str, next_: Annotated[str | None, Query(alias="next")] = None) -> Response:
    """Switch the console's language (a preference cookie, nothing else)."""
    response = RedirectResponse(safe_next(next_), status_code=303)
    response.set_cookie(LANG_COOKIE, i18n.pick(code), samesite="strict", path="/")
    return response


@router.get("/tz/{code}")
def time_zone(code: str, next_: Annotated[str | None, Query(alias="next")] = None) -> Response:
    """Choose the zone times are shown in: ``vn`` (Vietnam time, the default) or ``utc``.

    A preference cookie kept for a year, nothing else; the other zone stays in each tooltip.
    """
    response = RedirectResponse(safe_next(next_), status_code=303)
    response.set_cookie(TZ_COOKIE, timezones.pick(code).code, samesite="strict", path="/",
                        max_age=365 * 24 * 3600)  # fmt: skip
    return response
