"""``soc notify ...``: incident-email commands (registered in ``soc.cli``).

Commands parse options and call routing, rendering, the notifier flows or the demo mail catcher;
the work lives in those modules. ``sink`` and ``inbox`` are the demo's mail catcher: run
``soc notify sink`` and every email soc sends to the default SMTP settings can be read with
``soc notify inbox``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from soc.commands import command_settings, handles_errors
from soc.config import Settings
from soc.errors import SocError
from soc.notify.models import Language, NoticeEvent, OutboxStatus, Recipient

if TYPE_CHECKING:
    from soc.notify.flows import Notifier

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

app = typer.Typer(help="Incident emails: routes, previews, the outbox and the demo mail sink.",
                  no_args_is_help=True)  # fmt: skip
routes_app = typer.Typer(help="The email routes file.", no_args_is_help=True)
app.add_typer(routes_app, name="routes")


@routes_app.command("validate")
@handles_errors
def routes_validate(
    path: Annotated[Path, typer.Argument(help="Routes YAML (see config/routes.example.yaml).")],
) -> None:
    """Check a routes file; errors name the file and line."""
    from soc.notify.routing import load_routes

    settings = command_settings()
    routes = load_routes(path, settings.notify_national_soc)
    out.print(f"{path}: {len(routes.routes)} route(s), national SOC {routes.national.address}")
    for route in routes.routes:
        where = route.province_name + (f" / ward {route.ward_code}" if route.ward_code else "")
        extra = f" / {route.service}" if route.service else ""
        people = ", ".join(
            f"{c.address} ({c.language.value}, {c.role.value})" for c in route.contacts
        )
        out.print(
            f"  line {route.line}: {escape(where)}{extra} >= {route.min_severity.value}: {people}"
        )


@routes_app.command("demo")
@handles_errors
def routes_demo() -> None:
    """Print the demo's routes (every province's IT team), generated from the catalogue."""
    from soc.notify.demo_routes import demo_routes_yaml

    settings = command_settings()
    typer.echo(demo_routes_yaml(settings.notify_national_soc), nl=False)


@app.command("preview")
@handles_errors
def preview(
    language: Annotated[Language, typer.Option(help="vi or en.")] = Language.VI,
    event: Annotated[NoticeEvent, typer.Option(help="Which notice to render.")] = NoticeEvent.NEW,
    html: Annotated[bool, typer.Option(help="Print the HTML part instead of the text.")] = False,
) -> None:
    """Render the sample incident email with the effective templates (overrides included)."""
    from soc.notify.render import Renderer, sample_notice

    settings = command_settings()
    renderer = Renderer(settings.notify_dashboard_url, settings.notify_template_dir)
    for name, problem in renderer.refused.items():
        err.print(f"[yellow]override refused[/] {name}: {escape(problem)}")
    rendered = renderer.notice(sample_notice(event), Recipient(address="preview@soc.local",
                                                               language=language))  # fmt: skip
    out.print(f"Subject: {escape(rendered.subject)}\n")
    out.print(escape(rendered.html if html else rendered.text))


def _notifier(settings: Settings) -> Notifier:
    from soc.es.client import make_client, wait_until_healthy
    from soc.notify.flows import Notifier

    es = make_client(settings)
    wait_until_healthy(es, timeout=settings.es_wait_timeout, settings=settings)
    return Notifier.from_settings(es, settings)


@app.command("send-pending")
@handles_errors
def send_pending() -> None:
    """Batch held emails into digests, then try every due email once; print the outcome."""
    from soc.notify.smtp import SmtpSender

    settings = command_settings()
    notifier = _notifier(settings)
    digests = notifier.flush_digests()
    with SmtpSender(settings) as sender:
        report = notifier.send_pending(sender)
    out.print(f"digests {digests}, sent {report.sent}, retrying {report.retrying}, "
              f"failed {report.failed}, skipped {report.skipped}")  # fmt: skip
    for line in report.errors:
        err.print(escape(line))
    if notifier.hooks:
        from soc.notify.models import Channel
        from soc.notify.webhooks import WebhookSender

        hooks = WebhookSender(notifier.hooks, settings.notify_webhook_timeout)
        posted = notifier.send_pending(hooks, channel=Channel.WEBHOOK)
        out.print(f"webhooks: sent {posted.sent}, retrying {posted.retrying}, "
                  f"failed {posted.failed}")  # fmt: skip
        for line in posted.errors:
            err.print(escape(line))


@app.command("outbox")
@handles_errors
def outbox(
    status: Annotated[OutboxStatus | None, typer.Option(help="Only this status.")] = None,
    incident: Annotated[str | None, typer.Option(help="Only this incident id.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """List outbox emails (use --status failed to see permanent failures)."""
    from soc.notify import service

    notifier = _notifier(command_settings())
    found = service.listing(notifier.es, notifier.indices, status=status, incident_id=incident,
                            limit=limit)  # fmt: skip
    for stored in found:
        m = stored.message
        error = f"  last error: {m.last_error}" if m.last_error else ""
        out.print(escape(f"{m.status.value:9} {m.attempts}x {m.recipient.address:32} "
                         f"{m.subject[:80]}{error}"))  # fmt: skip
    out.print(f"{len(found)} email(s)")


@app.command("sink")
@handles_errors
def sink(
    port: Annotated[int | None, typer.Option(help="Port (default SOC_SMTP_PORT).")] = None,
    maildir: Annotated[Path | None, typer.Option(help="Default <var_dir>/mail.")] = None,
) -> None:
    """Run the demo's local mail catcher on 127.0.0.1 until Ctrl-C."""
    from soc.notify.sink import start_sink

    settings = command_settings()
    path = maildir or settings.var_dir / "mail"
    controller = start_sink(path, "127.0.0.1", port or settings.smtp_port)
    out.print(f"mail sink on 127.0.0.1:{port or settings.smtp_port}, storing in {path}")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


@app.command("inbox")
@handles_errors
def inbox(
    show: Annotated[int | None, typer.Option(help="Print message N (1 = oldest) in full.")] = None,
    maildir: Annotated[Path | None, typer.Option(help="Default <var_dir>/mail.")] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", help="Only emails to this address (e.g. hanoi-it@soc.local)."),
    ] = None,
) -> None:
    """List the emails the demo sink caught (or those to one recipient), or print one."""
    from soc.notify.sink import read_inbox

    settings = command_settings()
    mails = read_inbox(maildir or settings.var_dir / "mail")
    if to is not None:
        wanted = to.strip().lower()
        mails = [m for m in mails if wanted in {a.strip().lower() for a in m.to.split(",")}]
    if show is not None:
        if not 1 <= show <= len(mails):
            raise SocError(f"there are {len(mails)} message(s); --show takes 1..{len(mails)}")
        mail = mails[show - 1]
        out.print(escape(f"To: {mail.to}\nSubject: {mail.subject}\nDate: {mail.date}\n"))
        out.print(escape(mail.text()))
        return
    for number, mail in enumerate(mails, 1):
        out.print(escape(f"{number:4} {mail.to:32} {mail.subject[:90]}"))
    out.print(f"{len(mails)} message(s)")
