"""``soc simulate ...``: the simulator's commands (registered in ``soc.cli``).

Commands parse options, build a :class:`~soc.simulate.service.Plan` and call a flow; the work is
in ``flows``, ``live`` and ``evaluate``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from soc import logs
from soc.config import Settings, load_settings
from soc.errors import SimulationError, SocError
from soc.localities import catalogue
from soc.simulate import scenarios as scenario_files
from soc.simulate.scenarios import Scenario, parse_duration
from soc.simulate.service import Plan, floor_hour, local_midnight

P = ParamSpec("P")
R = TypeVar("R")
out = Console()
err = Console(stderr=True)


def _settings() -> Settings:
    settings = load_settings()
    logs.configure(settings.log_level)
    return settings


def handles_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Print a :class:`SocError` plainly and exit 1 (as ``soc.cli`` does; importing it would
    make the two modules import each other)."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except SocError as exc:
            err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False)
            raise typer.Exit(1) from None

    return wrapper


app = typer.Typer(help="Simulated public-service traffic, scenarios and ground truth.",
                  no_args_is_help=True)  # fmt: skip

SeedOpt = Annotated[int, typer.Option(help="Random seed: the same seed gives the same traffic.")]
ScaleOpt = Annotated[float, typer.Option(help="Volume multiplier (1.0 ≈ 280k events/weekday).",
                                         min=0.001, max=100)]  # fmt: skip
ScenarioOpt = Annotated[list[Path] | None, typer.Option("--scenario", "-s",
                        help="Scenario YAML file (repeatable).")]  # fmt: skip
ProvinceOpt = Annotated[list[str] | None, typer.Option("--province", "-p",
                        help="Only these provinces (code or name; repeatable).")]  # fmt: skip


def _when(text: str | None, default: datetime) -> datetime:
    if text is None:
        return default
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise SimulationError(f"--end/--start {text!r}: not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise SimulationError(f"--end/--start {text!r}: needs an offset, e.g. +07:00")
    return value.astimezone(UTC)


def _plan(seed: int, scale: float, files: list[Path] | None, provinces: list[str] | None,
          origin: datetime) -> Plan:  # fmt: skip
    cat = catalogue()
    found: list[Scenario] = []
    for path in files or []:
        found.extend(scenario_files.load(path, cat, origin))
    return Plan(seed=seed, scale=scale, provinces=tuple(provinces or ()), scenarios=tuple(found))


@app.command("backfill")
@handles_errors
def backfill_cmd(
    days: Annotated[float, typer.Option(help="Days of history to generate.", min=0.01)] = 7,
    end: Annotated[str | None, typer.Option(help="End (ISO 8601); default: this hour.")] = None,
    seed: SeedOpt = 1,
    scale: ScaleOpt = 1.0,
    scenario: ScenarioOpt = None,
    province: ProvinceOpt = None,
    labels: Annotated[Path, typer.Option(help="Ground-truth labels file.")] = Path(
        "var/simulate/labels.jsonl"
    ),
) -> None:
    """Index days of normalised events straight into Elasticsearch (fast; for training/tests)."""
    from soc.demo.flows import ensure_elasticsearch
    from soc.es.indices import Indices
    from soc.es.templates import setup
    from soc.simulate.flows import backfill

    settings = _settings()
    stop = _when(end, floor_hour(datetime.now(UTC)))
    start = stop - timedelta(days=days)
    plan = _plan(seed, scale, scenario, province, local_midnight(start))
    es, _ = ensure_elasticsearch(settings)
    indices = Indices(settings.index_prefix)
    setup(es, indices, replicas=settings.replicas)
    with out.status(f"simulating {start:%Y-%m-%d %H:%M} → {stop:%Y-%m-%d %H:%M} UTC…"):
        report = backfill(es, indices, plan, start, stop, labels_path=labels)
    for day, count in report.per_day.items():
        out.print(f"  {day}  {count:>9,} events", highlight=False)
    rate = report.total / report.seconds if report.seconds else 0.0
    out.print(f"{report.created:,} indexed, {report.duplicates:,} already there, "
              f"{len(report.rejected)} rejected in {report.seconds:.0f} s ({rate:,.0f}/s); "
              f"events store {report.store_bytes / 2**20:,.0f} MiB; "
              f"{report.labels} labels in {labels}", highlight=False)  # fmt: skip
    for item in report.rejected:
        err.print(f"  rejected: {item}", highlight=False, markup=False)
    if report.rejected:
        raise typer.Exit(1)


@app.command("files")
@handles_errors
def files_cmd(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory of the log files.")] = Path(
        "var/simulate/logs"
    ),
    hours: Annotated[float, typer.Option(help="Hours of logs to write.", min=0.01)] = 1,
    end: Annotated[str | None, typer.Option(help="End (ISO 8601); default: this hour.")] = None,
    seed: SeedOpt = 1,
    scale: ScaleOpt = 1.0,
    scenario: ScenarioOpt = None,
    province: ProvinceOpt = None,
) -> None:
    """Write log files in the systems' own formats (for the collectors), with a manifest."""
    from soc.simulate.flows import write_files

    _settings()
    stop = _when(end, floor_hour(datetime.now(UTC)))
    start = stop - timedelta(hours=hours)
    plan = _plan(seed, scale, scenario, province, local_midnight(start))
    report = write_files(plan, start, stop, out_dir)
    out.print(
        f"{report.lines:,} lines in {report.files:,} files under {report.root} "
        f"(manifest.json, {report.labels} labels in labels.jsonl)",
        highlight=False,
    )


@app.command("check")
@handles_errors
def check_cmd(files: list[Path]) -> None:
    """Validate scenario files and show what each one will do, where and when."""
    now = floor_hour(datetime.now(UTC))
    for path in files:
        for scn in scenario_files.load(path, catalogue(), now):
            place = scn.where.ward.name if scn.where.ward else scn.where.province.name
            span = parse_duration(scn.spec.duration)
            out.print(f"{path}: {scn.id}  {scn.kind.value}  {place}  "
                      f"{scn.service.value if scn.service else '*'}  start {scn.spec.start}  "
                      f"for {span}", highlight=False, markup=False)  # fmt: skip
