"""``soc demo``: the README's main job, and ``soc demo worker`` (one of its children).

Parses options and calls :mod:`soc.demo.session`; no logic of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from soc.commands import command_settings
from soc.errors import SocError

app = typer.Typer(help="The whole SOC on its embedded defaults (the README's main job).",
                  add_completion=False)  # fmt: skip
out = Console()
err = Console(stderr=True)


@app.callback(invoke_without_command=True)
def demo(
    ctx: typer.Context,
    backfill_days: Annotated[float | None, typer.Option(
        help="Days of history [SOC_DEMO_BACKFILL_DAYS, 7]; 0: none.", min=0)] = None,
    scale: Annotated[float | None, typer.Option(
        help="Traffic volume [SOC_DEMO_SCALE, 1.0 ≈ 280k events/day].", min=0.001)] = None,
    scenario_every: Annotated[float | None, typer.Option(
        help="Seconds between live scenarios [SOC_DEMO_SCENARIO_EVERY].", min=10)] = None,
    train: Annotated[bool, typer.Option(help="Train the anomaly model if none.")] = True,
    anomaly: Annotated[bool, typer.Option(help="Run the anomaly model in the worker.")] = True,
    live: Annotated[bool, typer.Option(help="Run live simulated traffic.")] = True,
    probe_interval: Annotated[float, typer.Option(
        help="Seconds between two checks of an endpoint.", min=1)] = 10,
    fleet_port: Annotated[int, typer.Option(
        help="First port of the simulator's mock endpoints (34, one per province).")] = 18300,
    push_port: Annotated[int, typer.Option(help="The collector's HTTP push port.")] = 18088,
    first_scenario: Annotated[float, typer.Option(
        help="Seconds from the start of live traffic to the first scenario.", min=1)] = 60,
    duration: Annotated[float, typer.Option(
        help="Stop after this many seconds (0: until Ctrl-C).", min=0)] = 0,
) -> None:  # fmt: skip
    """Run the whole SOC: Elasticsearch, history, model, detectors, API, collector, live traffic
    with scenarios, emails to a local sink. Ctrl-C stops everything; a second run reuses."""
    if ctx.invoked_subcommand is not None:
        return
    from soc.demo import session
    from soc.demo.models import DemoOptions

    settings = command_settings()
    options = DemoOptions.from_settings(
        settings, backfill_days=backfill_days, scale=scale, scenario_every=scenario_every,
        train=train, live=live, probe_interval=probe_interval, duration=duration,
        fleet_port=fleet_port, push_port=push_port, first_scenario=first_scenario,
    )  # fmt: skip
    columns = (TextColumn("  history"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn())
    try:
        if not out.is_terminal:  # a log file or a pipe: one line per step, with total and ETA
            outcome = session.run(settings, options, say=_say, progress=StepLog(_say),
                                  anomaly=anomaly)  # fmt: skip
        else:
            with Progress(*columns, console=out, transient=True) as bar:
                task = bar.add_task("history", total=None)

                def progress(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                outcome = session.run(settings, options, say=_say, progress=progress,
                                      anomaly=anomaly)  # fmt: skip
    except SocError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    restarted = {name: n for name, n in outcome.restarts.items() if n}
    if restarted:
        out.print(f"restarted during the run: {restarted}", highlight=False)


class StepLog:
    """Backfill progress as log lines (done/total, elapsed, ETA) where no bar can be drawn."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.began: float | None = None
        self.first_done = 0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self.began is None:  # the first call comes before any work (done > 0: resumed)
            self.began, self.first_done = now, done
            resumed = f", resuming after step {done}" if done else ""
            self.say(f"  history: {total} steps to backfill{resumed}")
            return
        rate = (done - self.first_done) / max(now - self.began, 1e-9)
        eta = (total - done) / rate if rate > 0 else 0.0
        self.say(f"  history: step {done}/{total} ({100 * done / total:.0f}%), elapsed "
                 f"{_mmss(now - self.began)}, ETA {_mmss(eta)}")  # fmt: skip


def _mmss(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    return f"{minutes}m{secs:02d}s"


def _say(line: str) -> None:
    out.print(line, highlight=False, markup=False)


@app.command("worker")
def worker(
    anomaly: Annotated[bool, typer.Option(help="Also run the anomaly model.")] = True,
) -> None:
    """Group alerts into incidents, send the emails, run the anomaly model (a demo child)."""
    from soc.pipeline import run_worker

    try:
        run_worker(command_settings(), anomaly=anomaly)
    except SocError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
