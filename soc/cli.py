"""The ``soc`` command line: one sub-command group per concern.

The packages' groups are loaded only when used (:mod:`soc.subcommands`), so ``soc --help``
imports neither scikit-learn, pySigma nor the Elasticsearch client. Every command reads the one
:class:`~soc.config.Settings`, configures logging once, and turns a :class:`~soc.errors.SocError`
into a clear message on stderr and exit code 1. Commands only parse arguments and call services or
flows; no business logic lives here.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from soc.commands import command_settings, handles_errors
from soc.errors import SocError
from soc.subcommands import LazyTyperGroup

if TYPE_CHECKING:
    from soc.es.launcher import LocalNode


# The packages' groups (anomaly, rules, collect, …) load lazily: see soc.subcommands.
app = typer.Typer(help="soc: security operations monitoring for public-service systems.",
                  no_args_is_help=True, add_completion=False, cls=LazyTyperGroup)  # fmt: skip
es_app = typer.Typer(help="The Elasticsearch store: the managed local node and the templates.",
                     no_args_is_help=True)  # fmt: skip
config_app = typer.Typer(help="Effective configuration.", no_args_is_help=True)
localities_app = typer.Typer(help="The catalogue of provinces and communes/wards.",
                             no_args_is_help=True)  # fmt: skip
app.add_typer(es_app, name="es")
app.add_typer(config_app, name="config")
app.add_typer(localities_app, name="localities")

out = Console()
err = Console(stderr=True)


# ----------------------------------------------------------------------- es
def _node() -> LocalNode:
    from soc.es.launcher import LocalNode

    settings = command_settings()
    if not settings.managed_es:
        raise SocError(
            f"SOC_ES_URL is set ({settings.es_url}): soc uses that cluster and manages no local "
            "node. Unset it to use the managed node."
        )
    return LocalNode(settings)


@es_app.command("install")
@handles_errors
def es_install() -> None:
    """Fetch and unpack the Elasticsearch server (cached: a second run downloads nothing)."""
    node = _node()
    home = node.install()
    out.print(f"Elasticsearch {node.version} installed in {home}")


@es_app.command("start")
@handles_errors
def es_start() -> None:
    """Start the managed node in the background and wait until it is healthy."""
    node = _node()
    if not node.start():
        out.print(f"Elasticsearch is already running (pid {node.pid()}) at {node.url}; "
                  "nothing started.")  # fmt: skip
        return
    out.print(f"Elasticsearch {node.version} is running at {node.url} (pid {node.pid()})")
    out.print(f"logs: {node.log_dir}")


@es_app.command("stop")
@handles_errors
def es_stop() -> None:
    """Stop the managed node."""
    node = _node()
    out.print("stopped" if node.stop() else "Elasticsearch was not running")


@es_app.command("status")
@handles_errors
def es_status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show whether the managed node runs, where, and its health. Exit 3 when stopped."""
    status = _node().status()
    if as_json:
        out.print_json(json.dumps(asdict(status), default=str))
    else:
        for line in status.lines():
            out.print(line, highlight=False)
    if not status.running:
        raise typer.Exit(3)


@es_app.command("reset")
@handles_errors
def es_reset(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Stop the managed node and delete all its data (every index)."""
    node = _node()
    if not yes and not typer.confirm(f"Delete all data in {node.data_dir}?"):
        raise typer.Exit(1)
    node.reset()
    out.print(f"stopped and wiped {node.data_dir}")


@es_app.command("prune")
@handles_errors
def es_prune(
    keep_days: Annotated[int, typer.Option(help="Days kept before today (and today).",
                                           min=1)],
    yes: Annotated[bool, typer.Option("--yes", help="Delete without asking.")] = False,
) -> None:  # fmt: skip
    """Delete the daily event indices older than --keep-days (retention; run it daily)."""
    from datetime import UTC, datetime

    from soc.es import retention
    from soc.es.client import make_client, wait_until_healthy
    from soc.es.indices import Indices

    settings = command_settings()
    es = make_client(settings)
    wait_until_healthy(es, timeout=settings.es_wait_timeout, settings=settings)
    names = retention.expired(es, Indices(settings.index_prefix), keep_days,
                              datetime.now(UTC).date())  # fmt: skip
    if not names:
        out.print(f"nothing older than {keep_days} days")
        return
    if not yes and not typer.confirm(f"Delete {len(names)} indices ({names[0]} … {names[-1]})?"):
        raise typer.Exit(1)
    retention.delete(es, names)
    out.print(f"deleted {len(names)} indices: {', '.join(names)}", highlight=False)


@es_app.command("setup")
@handles_errors
def es_setup() -> None:
    """Install soc's index templates and indices (idempotent); refuse incompatible indices."""
    from soc.es.client import make_client, wait_until_healthy
    from soc.es.indices import Indices
    from soc.es.templates import Layout, setup

    settings = command_settings()
    es = make_client(settings)
    wait_until_healthy(es, timeout=settings.es_wait_timeout, settings=settings)
    report = setup(es, Indices(settings.index_prefix), layout=Layout.of(settings))
    for line in report.lines():
        out.print(line, highlight=False)


# ----------------------------------------------------------------------- config
@config_app.command("show")
@handles_errors
def config_show(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Print the effective settings, secrets masked."""
    shown = command_settings().masked()
    if as_json:
        out.print_json(json.dumps(shown, default=str))
        return
    width = max(len(k) for k in shown)
    for key, value in shown.items():
        out.print(f"{key.ljust(width)}  {value}", highlight=False)


# ----------------------------------------------------------------------- localities
@localities_app.command("list")
@handles_errors
def localities_list(
    province: Annotated[str | None, typer.Option(help="List this province's wards.")] = None,
) -> None:
    """List the provinces, or the wards of one province."""
    from soc.localities import catalogue

    cat = catalogue()
    if province is None:
        for p in cat.provinces:
            out.print(f"{p.code}  {p.name}  ({len(cat.wards_of(p))} wards)", highlight=False)
        return
    for w in cat.wards_of(province):
        out.print(f"{w.code}  {w.name}", highlight=False)


@localities_app.command("find")
@handles_errors
def localities_find(
    query: str,
    province: Annotated[str | None, typer.Option(help="Province, to find a ward in it.")] = None,
    ward: Annotated[bool, typer.Option("--ward", help="Look up a ward, not a province.")] = False,
) -> None:
    """Resolve a province (or, with --ward, a ward) by code or name, diacritics optional."""
    from soc.localities import catalogue

    cat = catalogue()
    if ward or province is not None:
        w = cat.ward(query, province)
        out.print(f"{w.code}  {w.name}  ·  {cat.province_of(w).code}  {cat.province_of(w).name}",
                  highlight=False)  # fmt: skip
    else:
        p = cat.province(query)
        out.print(f"{p.code}  {p.name}  ({len(cat.wards_of(p))} wards)", highlight=False)


@app.command("pipeline")
@handles_errors
def pipeline(
    anomaly: Annotated[bool, typer.Option(help="Also run the anomaly model.")] = True,
) -> None:
    """Group alerts into incidents, send the emails, run the anomaly model, until stopped.

    Runs beside `soc detect` (the Sigma rules). Every job is idempotent: a restart or a second
    instance doubles nothing.
    """
    from soc.pipeline import run_worker

    run_worker(command_settings(), anomaly=anomaly)


@app.command("health")
def health(
    process: Annotated[str, typer.Argument(help="api, detect or pipeline.")],
    max_age: Annotated[float, typer.Option(help="Seconds a heartbeat stays fresh.")] = 60.0,
) -> None:
    """Exit 0 when this host's process is healthy (a container health check).

    api: /api/v1/health answers on SOC_API_PORT; detect, pipeline: their heartbeat is fresh.
    """
    from soc.config import load_settings  # here, not at start-up: `soc --help` stays light

    settings = load_settings()
    if process == "api":
        import urllib.request

        url = f"http://127.0.0.1:{settings.api_port}/api/v1/health"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                body = json.loads(resp.read())
        except (OSError, ValueError) as exc:
            err.print(f"unhealthy: {url}: {exc}", highlight=False)
            raise typer.Exit(1) from None
        out.print(f"api {body.get('status')}, elasticsearch {body.get('elasticsearch')}")
        return
    from soc import heartbeat

    if process not in ("detect", "pipeline"):
        err.print(f"unknown process {process!r}: api, detect or pipeline", highlight=False)
        raise typer.Exit(2)
    seconds = heartbeat.age(settings.var_dir, process)
    if seconds is None or seconds > max_age:
        when = "never" if seconds is None else f"{seconds:.0f} s ago"
        err.print(f"unhealthy: {process} last beat {when} (max {max_age:.0f} s)", highlight=False)
        raise typer.Exit(1)
    out.print(f"{process} beat {seconds:.0f} s ago")


def main() -> None:
    try:
        app()
    except SocError as exc:  # raised while reading settings, before a command runs
        err.print(f"error: {exc}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
