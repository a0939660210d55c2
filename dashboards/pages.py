"""What every console page shares: the signed-in session, CSRF on forms, rendering, time zones.

A page needs the ``soc_session`` cookie of a login; without one it raises
:class:`~soc.errors.LoginRequired`, which :mod:`dashboards.views` turns into a redirect to the login
page. Every form carries the session's CSRF token in a hidden ``csrf_token`` field and
:func:`form` refuses a post without it. Templates are autoescaped (log content is attacker
controlled), and times are shown in the person's zone (Vietnam time by default, UTC by choice,
the ``soc_tz`` preference cookie), labelled, with the other zone in a tooltip
(:mod:`soc.timezones`). This module must not read incidents or alerts.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

from elasticsearch import Elasticsearch
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup

from dashboards import i18n
from soc import timezones
from soc.auth import service as auth
from soc.auth.models import Role, User
from soc.config import Settings
from soc.deps import SESSION_COOKIE, DirectoryDep, EsDep, IndicesDep, SettingsDep
from soc.errors import Forbidden, LoginRequired, NotAuthenticated, RequestError
from soc.es.indices import Indices
from soc.i18n import translations
from soc.services import Service

HERE = Path(__file__).parent
LANG_COOKIE = "soc_lang"
TZ_COOKIE = "soc_tz"
#: A form body larger than this is refused: the biggest legitimate one is a rule upload.
MAX_FORM_BYTES = 256 * 1024

_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
    extensions=["jinja2.ext.i18n"],
)
# Old-style gettext: a label is plain text, escaped on output like any other value. Each render
# passes its page's ``gettext`` (see :func:`render`); these are the default language's.
_env.install_gettext_translations(  # type: ignore[attr-defined]
    translations("console", i18n.DEFAULT), newstyle=False
)


def _zone(context: Context) -> timezones.Zone:
    page = context.get("page")
    return page.zone if isinstance(page, Page) else timezones.DEFAULT


@pass_context
def local_time(context: Context, value: datetime | str | None) -> Markup:
    """A stored UTC time as this person reads it: their zone, labelled; the other in a tooltip."""
    when = timezones.parse(value)
    if when is None:
        return Markup("")
    zone = _zone(context)
    shown, tip = zone.show(when), timezones.other(zone).show(when)
    iso = when.astimezone(timezones.ZONES["utc"].tz).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Markup('<time datetime="{}" title="{}">{}</time>').format(iso, tip, shown)


@pass_context
def local_text(context: Context, value: datetime | str | None) -> str:
    """The same as plain text, for places that take no markup (SVG labels, attributes)."""
    when = timezones.parse(value)
    return "" if when is None else _zone(context).show(when)


_env.filters["local"] = local_time
_env.filters["local_text"] = local_text


@dataclass(frozen=True)
class Page:
    """The signed-in person asking for a page, with what every template needs."""

    user: User
    csrf: str
    lang: str
    path: str
    es: Elasticsearch
    indices: Indices
    settings: Settings
    zone: timezones.Zone = timezones.DEFAULT

    @property
    def is_admin(self) -> bool:
        return self.user.role is Role.ADMIN

    @property
    def can_triage(self) -> bool:
        return self.user.role in (Role.ADMIN, Role.ANALYST)

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("this page is for administrators")

    def require_triage(self) -> None:
        if not self.can_triage:
            raise Forbidden("triage is for analysts and administrators")

    def t(self, key: str) -> str:
        return i18n.label(key, self.lang)

    def service_label(self, name: str | None) -> str:
        if not name:
            return ""
        try:
            svc = Service(name)
        except ValueError:
            return name
        return svc.label_vi if self.lang == "vi" else svc.label_en


def _page(
    request: Request,
    es: EsDep,
    indices: IndicesDep,
    directory: DirectoryDep,
    settings: SettingsDep,
) -> Page:
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        raise LoginRequired("sign in to use the console")
    try:
        session = auth.session_for(es, indices, directory, secret, auth.utcnow())
    except NotAuthenticated:
        raise LoginRequired("session expired or signed out; sign in again") from None
    return Page(
        user=session.user,
        csrf=session.csrf,
        lang=i18n.pick(request.cookies.get(LANG_COOKIE)),
        zone=timezones.pick(request.cookies.get(TZ_COOKIE)),
        path=request.url.path,
        es=es,
        indices=indices,
        settings=settings,
    )


PageDep = Annotated[Page, Depends(_page)]


def render(page: Page | None, template: str, code: int = 200, **context: Any) -> HTMLResponse:
    lang = page.lang if page else i18n.DEFAULT
    catalogue = translations("console", lang)
    html = _env.get_template(template).render(
        page=page,
        gettext=catalogue.gettext,
        ngettext=catalogue.ngettext,
        lang=lang,
        services=list(Service),
        **context,
    )
    return HTMLResponse(html, status_code=code)


@dataclass(frozen=True)
class Form:
    """A posted form: every value of every field, as text."""

    fields: dict[str, list[str]]

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[0] if values else default

    def all(self, name: str) -> list[str]:
        return list(self.fields.get(name, []))


async def read_form(request: Request) -> Form:
    """The urlencoded body of a form post; refuses other encodings and oversized bodies."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "application/x-www-form-urlencoded":
        raise RequestError(
            f"expected a form post (application/x-www-form-urlencoded), got {kind!r}"
        )
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise RequestError(f"form too large: at most {MAX_FORM_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("form body is not UTF-8") from None
    return Form(parse_qs(text, keep_blank_values=True, max_num_fields=1000))


async def form(request: Request, page: Page) -> Form:
    """The posted form, after checking its CSRF token against the session's."""
    posted = await read_form(request)
    sent = posted.get("csrf_token")
    if not hmac.compare_digest(sent.encode(), page.csrf.encode()):
        raise Forbidden("the form has no valid CSRF token: reload the page and try again")
    return posted


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to go back to after a login or a form; anything else is the default."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target
