"""``soc collect ...``: run a collector, show its counters, check its configuration.

Registered in ``soc.cli``. Commands parse options and call :mod:`collectors.flows`; no collecting
logic lives here.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from soc import logs
from soc.config import load_settings
from soc.errors import SocError

if TYPE_CHECKING:
    from soc.es.templates import Layout

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    help="Collectors: ship public-service logs into Elasticsearch.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True, soft_wrap=True)
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="The collector's YAML file.")]


def _errors(fn: Callable[P, R]) -> Callable[P, R]:
    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except SocError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper


@app.command("check")
@_errors
def check(config: ConfigOpt) -> None:
    """Validate the configuration and inventory (errors name file, line and key)."""
    from collectors.config import load_config
    from collectors.routing import check_routes

    cfg = load_config(config)
    problems = check_routes(cfg)
    for problem in problems:
        err.print(f"[bold red]error:[/] {escape(str(problem))}", highlight=False)
    if problems:
        raise typer.Exit(1)
    out.print(
        f"ok: collector {escape(cfg.id)}, {len(cfg.spec.sources)} sources, "
        f"{len(cfg.inventory.systems)} inventory systems, state in {cfg.state_dir}",
        highlight=False,
    )


@app.command("run")
@_errors
def run(
    config: ConfigOpt,
    duration: Annotated[
        float, typer.Option(help="Stop after this many seconds; 0 = until SIGTERM/Ctrl-C.", min=0)
    ] = 0,
    drain_timeout: Annotated[float, typer.Option(help="Seconds to ship the spool on stop.")] = 30,
) -> None:
    """Run the collector in the foreground until stopped."""
    from collectors.config import load_config
    from collectors.flows import Collector
    from soc.es.client import check_access, make_client
    from soc.es.indices import Indices
    from soc.es.templates import Layout, setup

    settings = load_settings()
    logs.configure(settings.log_level)
    cfg = load_config(config)
    es = make_client(settings)
    check_access(es)  # wrong credentials or CA fail now; a down cluster only means spooling
    indices = Indices(settings.index_prefix)
    collector = Collector(
        cfg, es, indices, prepare=lambda: _setup(setup, es, indices, Layout.of(settings))
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    collector.start()
    out.print(
        f"collector {escape(cfg.id)} running ({len(collector.sources)} sources) → "
        f"{settings.effective_es_url}; status: soc collect status -c {config}",
        highlight=False,
    )
    for source in collector.sources:
        out.print(f"  {escape(source.id)}: {source.type_name} {source.health()}", highlight=False)
    if collector.metrics_port:
        out.print(f"  metrics: http://127.0.0.1:{collector.metrics_port}/metrics")
    stop.wait(duration or None)
    drained = collector.stop(drain_timeout=drain_timeout)
    if not drained:
        err.print(
            f"stopped with {collector.spool.pending_bytes()} bytes still spooled in "
            f"{cfg.state_dir}; they go out on the next run",
            highlight=False,
        )


def _setup(setup: Callable[..., Any], es: Any, indices: Any, layout: Layout) -> None:
    setup(es, indices, layout=layout)


@app.command("import")
@_errors
def import_(
    config: ConfigOpt,
    files: Annotated[list[Path], typer.Argument(help="Archived log files, read to their end.")],
    fmt: Annotated[str, typer.Option("--format", help="access | json | syslog | auto")] = "auto",
    source_id: Annotated[str, typer.Option("--source-id", help="soc.source.id of the events.")] = (
        "import"
    ),
    system: Annotated[
        str | None,
        typer.Option(help="Inventory system the files belong to (default: by their path)."),
    ] = None,
    drain_timeout: Annotated[float, typer.Option(help="Seconds to ship what was read.")] = 300,
) -> None:
    """Import archived logs once: events keep their own time (flag imported); exits with the
    accounting. Exit 1 if something is left unshipped."""
    from collectors.config import load_config
    from collectors.importer import run_import
    from soc.es.client import check_access, make_client
    from soc.es.indices import Indices
    from soc.es.templates import Layout, setup

    settings = load_settings()
    logs.configure(settings.log_level)
    cfg = load_config(config)
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        err.print(f"[bold red]error:[/] not files: {escape(', '.join(missing))}", highlight=False)
        raise typer.Exit(2)
    es = make_client(settings)
    check_access(es)
    indices = Indices(settings.index_prefix)
    layout = Layout.of(settings)
    summary = run_import(cfg, es, indices, files, fmt=fmt, source_id=source_id, system=system,
                         prepare=lambda: _setup(setup, es, indices, layout),
                         drain_timeout=drain_timeout)  # fmt: skip
    counts = ", ".join(f"{k} {v}" for k, v in summary.counts.items())
    out.print(f"imported {summary.files} files in {summary.seconds:.1f}s: {counts}",
              highlight=False)  # fmt: skip
    if not summary.balanced:
        err.print(f"{summary.left_in_spool} bytes not shipped (Elasticsearch unreachable?): "
                  f"run the import again (it doubles nothing); state in {summary.state_dir}",
                  highlight=False)  # fmt: skip
        raise typer.Exit(1)


@app.command("status")
@_errors
def status(
    config: ConfigOpt,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    max_age: Annotated[float | None, typer.Option(
        help="Exit 1 when the status is older than this many seconds (a health check).")] = None,
) -> None:  # fmt: skip
    """Per-source counters of the collector (from its status file). Exit 3 if it never ran."""
    from collectors.config import load_config
    from collectors.flows import read_status

    cfg = load_config(config)
    snap = read_status(cfg.state_dir)
    if snap is None:
        err.print(f"no status in {cfg.state_dir}: the collector has not run yet", highlight=False)
        raise typer.Exit(3)
    if as_json:
        out.print_json(json.dumps(snap))
        return
    age = time.time() - float(snap.get("written_at", 0))
    if max_age is not None and age > max_age:
        err.print(f"unhealthy: status written {age:.0f} s ago (max {max_age:.0f} s)")
        raise typer.Exit(1)
    out.print(
        f"collector {escape(str(snap['collector']))} (pid {snap.get('pid')}), status "
        f"written {age:.0f}s ago, spool {snap.get('spool_bytes', 0)} bytes",
        highlight=False,
    )
    cols = (
        "read",
        "resumed",
        "indexed",
        "duplicates",
        "deadlettered",
        "dropped",
        "retries",
        "lag_seconds",
        "pending",
    )
    table = Table("source", *cols, "in flight")
    for source, values in sorted(snap["sources"].items()):
        taken = int(values.get("read", 0)) + int(values.get("resumed", 0))
        settled = sum(int(values.get(k, 0)) for k in cols[2:6])
        table.add_row(
            escape(source), *(str(values.get(k, "-")) for k in cols), str(taken - settled)
        )
    out.print(table)
