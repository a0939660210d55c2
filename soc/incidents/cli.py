"""``soc incidents group``: group the alerts not yet in an incident (once, or every N seconds),
then record the status board's colour changes.

``soc detect`` is where grouping runs in production, next to the detectors; this command is for
operators and the demo. It only parses options and calls ``soc.incidents.grouping``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

import typer

from soc import logs
from soc.auth.models import Role, User
from soc.config import load_settings
from soc.errors import SocError
from soc.es.client import make_client, wait_until_healthy
from soc.es.indices import Indices
from soc.es.templates import Layout, setup
from soc.incidents.episodes import close_recovered
from soc.incidents.grouping import group_pending
from soc.status import service as status

#: The board is recorded for the whole country, whoever runs the command.
_BOARD = User(name="soc-status", role=Role.ADMIN)

app = typer.Typer(help="Incidents: group alerts into incidents.", no_args_is_help=True)


@app.command("group")
def group(
    every: Annotated[float, typer.Option(min=0, help="Repeat every N seconds (0: once).")] = 0,
) -> None:
    """Group pending alerts into incidents."""
    settings = load_settings()
    logs.configure(settings.log_level)
    try:
        es = make_client(settings)
        wait_until_healthy(es, timeout=settings.es_wait_timeout, settings=settings)
        indices = Indices(settings.index_prefix)
        setup(es, indices, layout=Layout.of(settings))
        while True:
            grouped = group_pending(es, indices, settings)
            now = datetime.now(UTC)
            recovered = close_recovered(es, indices, settings, now)
            current = status.board(
                es, indices, user=_BOARD, now=now, probe_window=settings.status_probe_window
            )
            changed = status.record_changes(es, indices, current, now)
            typer.echo(
                f"grouped {grouped} alert(s); {recovered} recovered; {changed} status change(s)"
            )
            if not every:
                return
            time.sleep(every)
    except SocError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
