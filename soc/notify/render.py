"""Render incident emails (subject, plain text, HTML) from Jinja2 templates, in vi or en.

The default templates live in ``soc/notify/templates``. An admin may override any of them with a
file of the same name in ``SOC_NOTIFY_TEMPLATE_DIR``; each override is compiled and test-rendered
in both languages at load, and a broken one is refused (its error kept in :attr:`Renderer.refused`
and logged) while the default stays in use.

Log content is attacker-controlled: HTML is autoescaped, and the ``visible`` filter turns control
characters (CR, LF, ESC ...) into visible escapes in both parts. Subjects are folded to one line.
This module must not send, store or route anything.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from soc import timezones
from soc.alerts.models import Severity
from soc.i18n import translations
from soc.notify import texts
from soc.notify.models import (
    ErrorCount,
    IncidentNotice,
    Language,
    NoticeEvent,
    Recipient,
    SampleEvent,
    WardRef,
)
from soc.services import Service

log = logging.getLogger(__name__)

TEMPLATE_NAMES = (
    "notice_subject.txt",
    "notice.txt",
    "notice.html",
    "digest_subject.txt",
    "digest.txt",
    "digest.html",
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]|\n")
_SUBJECT_MAX = 200


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def visible(value: object) -> str:
    """Control characters, CR and LF included, as visible escapes: log text stays one line."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(value))


def one_line(value: str) -> str:
    """A header-safe line: every control character becomes a space, runs collapse, capped."""
    flat = " ".join(re.sub(r"[\x00-\x1f\x7f\u2028\u2029]", " ", value).split())
    return flat if len(flat) <= _SUBJECT_MAX else flat[: _SUBJECT_MAX - 1] + "…"


def local_time(value: datetime) -> str:
    """Vietnam time, labelled (``01/07/2025 08:30 UTC+7``): emails are read in Vietnam."""
    return timezones.vietnam(value, "%d/%m/%Y %H:%M")


def service_label(name: str | None, language: Language) -> str | None:
    if name is None:
        return None
    try:
        service = Service(name)
    except ValueError:
        return name
    return service.label_vi if language is Language.VI else service.label_en


@dataclass
class Renderer:
    """Renders notices and digests; holds the accepted templates."""

    dashboard_url: str = "http://127.0.0.1:8000"
    override_dir: Path | None = None
    refused: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._env = _environment({})
        overrides = self._accepted_overrides()
        if overrides:
            self._env = _environment(overrides)

    def _accepted_overrides(self) -> dict[str, str]:
        accepted: dict[str, str] = {}
        if self.override_dir is None or not self.override_dir.is_dir():
            return accepted
        for name in TEMPLATE_NAMES:
            path = self.override_dir / name
            if not path.is_file():
                continue
            problem = self._try_override(name, path)
            if problem is None:
                accepted[name] = path.read_text("utf-8")
                log.info("using template override %s", path)
            else:
                self.refused[name] = problem
                log.error("refused template override %s: %s (default kept)", path, problem)
        return accepted

    def _try_override(self, name: str, path: Path) -> str | None:
        try:
            source = path.read_text("utf-8")
            trial = Renderer(self.dashboard_url)
            trial._env = _environment({name: source})
            for language in Language:
                recipient = Recipient(address="check@soc.local", language=language)
                trial.notice(sample_notice(), recipient)
                trial.digest([sample_notice()], recipient)
        except (OSError, UnicodeDecodeError, jinja2.TemplateError) as exc:
            line = getattr(exc, "lineno", None)
            return f"{path}{f':{line}' if line else ''}: {type(exc).__name__}: {exc}"
        return None

    def link(self, notice: IncidentNotice) -> str:
        return (
            notice.dashboard_url
            or f"{self.dashboard_url.rstrip('/')}/incidents/{quote(notice.incident_id, safe='')}"
        )

    def _context(self, notice: IncidentNotice, language: Language) -> dict[str, Any]:
        return {
            "n": notice,
            "t": texts.labels(language),
            "gettext": translations("email", language.value).gettext,
            "lang": language.value,
            "event_label": texts.event_label(language, notice.event),
            "status_label": texts.status_label(language, notice.status),
            "service": service_label(notice.service, language),
            "first_steps": texts.steps(notice.first_steps, language),
            "link": self.link(notice),
        }

    def notice(self, notice: IncidentNotice, recipient: Recipient) -> Rendered:
        context = self._context(notice, recipient.language)
        subject = one_line(self._env.get_template("notice_subject.txt").render(context))
        context["subject"] = subject
        return Rendered(
            subject=subject,
            text=self._env.get_template("notice.txt").render(context),
            html=self._env.get_template("notice.html").render(context),
        )

    def digest(self, notices: Sequence[IncidentNotice], recipient: Recipient) -> Rendered:
        language = recipient.language
        items = [self._context(n, language) for n in notices]
        worst = max((n.severity for n in notices), key=lambda s: s.rank, default=Severity.LOW)
        provinces = sorted({n.province_name for n in notices})
        context: dict[str, Any] = {
            "items": items,
            "t": texts.labels(language),
            "gettext": translations("email", language.value).gettext,
            "lang": language.value,
            "worst": worst,
            "provinces": provinces,
        }
        subject = one_line(self._env.get_template("digest_subject.txt").render(context))
        context["subject"] = subject
        return Rendered(
            subject=subject,
            text=self._env.get_template("digest.txt").render(context),
            html=self._env.get_template("digest.html").render(context),
        )


def _environment(overrides: dict[str, str]) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if overrides:
        loaders.append(jinja2.DictLoader(overrides))
    loaders.append(jinja2.PackageLoader("soc.notify", "templates"))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    # ``_("key")`` reads the email catalogue; each render passes its recipient's ``gettext``.
    env.install_gettext_translations(  # type: ignore[attr-defined]
        translations("email", Language.VI.value), newstyle=False
    )
    env.filters["visible"] = visible
    env.filters["local"] = local_time
    return env


def sample_notice(event: NoticeEvent = NoticeEvent.NEW) -> IncidentNotice:
    """A realistic notice (with hostile log content) to preview and test-render templates."""
    start = datetime(2025, 7, 1, 1, 30, tzinfo=UTC)
    return IncidentNotice(
        incident_id="inc-demo-0001",
        event=event,
        title="Lỗi đăng nhập VNeID tăng đột biến",
        severity=Severity.HIGH,
        province_code="04",
        province_name="Cao Bằng",
        wards=(WardRef(code="01273", name="Phường Thục Phán"),),
        service=Service.VNEID.value,
        status="new",
        first_seen=start,
        last_seen=start + timedelta(minutes=25),
        alert_count=3,
        event_count=412,
        top_error_codes=(ErrorCount(code="VNEID-401", count=380), ErrorCount(code="502", count=32)),
        samples=(
            SampleEvent(
                timestamp=start + timedelta(minutes=3),
                message='login failed <script>alert("x")</script>\r\nBcc: victim@example.org',
                source_ip="203.0.113.7",
            ),
        ),
        first_steps="login",
    )
