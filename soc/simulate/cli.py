"""``soc simulate ...``: the simulator's commands (registered in ``soc.cli``).

Commands parse options, build a :class:`~soc.simulate.service.Plan` and call a flow; the work is
in ``flows``, ``live`` and ``evaluate``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from soc.commands import command_settings, handles_errors
from soc.config import PROJECT_ROOT, Settings
from soc.errors import SimulationError
from soc.localities import catalogue
from soc.simulate import scenarios as scenario_files
from soc.simulate.scenarios import Scenario, parse_duration
from soc.simulate.service import Plan, floor_hour, local_midnight

if TYPE_CHECKING:
    from soc.simulate.evaluate import Evaluation
    from soc.simulate.live import Sink

out = Console()
err = Console(stderr=True)


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
          origin: datetime, probes: bool = False) -> Plan:  # fmt: skip
    cat = catalogue()
    found: list[Scenario] = []
    for path in files or []:
        found.extend(scenario_files.load(path, cat, origin))
    return Plan(seed=seed, scale=scale, provinces=tuple(provinces or ()), scenarios=tuple(found),
                probes=probes)  # fmt: skip


@app.command("backfill")
@handles_errors
def backfill_cmd(
    days: Annotated[float, typer.Option(help="Days of history to generate.", min=0.01)] = 7,
    end: Annotated[str | None, typer.Option(help="End (ISO 8601); default: this hour.")] = None,
    seed: SeedOpt = 1,
    scale: ScaleOpt = 1.0,
    scenario: ScenarioOpt = None,
    province: ProvinceOpt = None,
    labels: Annotated[
        Path | None, typer.Option(help="Labels file [<var>/simulate/labels.jsonl].")
    ] = None,
    probes: Annotated[
        bool,
        typer.Option(help="Also the health-probe results of every fleet endpoint (~90,000 a day)."),
    ] = False,
) -> None:
    """Index days of normalised events straight into Elasticsearch (fast; for training/tests)."""
    from soc.es.client import ensure_elasticsearch
    from soc.es.indices import Indices
    from soc.es.templates import Layout, setup
    from soc.simulate.flows import backfill

    settings = command_settings()
    labels = labels or settings.var_dir / "simulate" / "labels.jsonl"
    stop = _when(end, floor_hour(datetime.now(UTC)))
    start = stop - timedelta(days=days)
    plan = _plan(seed, scale, scenario, province, local_midnight(start), probes)
    es, _ = ensure_elasticsearch(settings)
    indices = Indices(settings.index_prefix)
    setup(es, indices, layout=Layout.of(settings))
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
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Log directory [<var>/simulate/logs].")
    ] = None,
    hours: Annotated[float, typer.Option(help="Hours of logs to write.", min=0.01)] = 1,
    end: Annotated[str | None, typer.Option(help="End (ISO 8601); default: this hour.")] = None,
    seed: SeedOpt = 1,
    scale: ScaleOpt = 1.0,
    scenario: ScenarioOpt = None,
    province: ProvinceOpt = None,
) -> None:
    """Write log files in the systems' own formats (for the collectors), with a manifest."""
    from soc.simulate.flows import write_files

    out_dir = out_dir or command_settings().var_dir / "simulate" / "logs"
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


@app.command("evaluate")
@handles_errors
def evaluate_cmd(
    labels: Annotated[
        Path | None, typer.Option(help="Labels of the run [<var>/simulate/labels.jsonl].")
    ] = None,
    grace: Annotated[str, typer.Option(help="Late detections still count (e.g. 30m).")] = "30m",
    start: Annotated[str | None, typer.Option(help="Only alerts after (ISO 8601).")] = None,
    end: Annotated[str | None, typer.Option(help="Only alerts before (ISO 8601).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Compare the alerts in Elasticsearch with a run's ground truth: detected, missed, false."""
    import json

    from soc.es.client import make_client, wait_until_healthy
    from soc.es.indices import Indices
    from soc.simulate import labels as labels_file
    from soc.simulate.evaluate import evaluate, fetch_alerts

    settings = command_settings()
    labels = labels or settings.var_dir / "simulate" / "labels.jsonl"
    truth = labels_file.read(labels)  # a broken file fails before any waiting on the cluster
    es = make_client(settings)
    wait_until_healthy(es, timeout=settings.es_wait_timeout, settings=settings)
    lo = _when(start, datetime.min.replace(tzinfo=UTC)) if start else None
    hi = _when(end, datetime.max.replace(tzinfo=UTC)) if end else None
    result = evaluate(truth, fetch_alerts(es, Indices(settings.index_prefix), lo, hi),
                      grace=parse_duration(grace))  # fmt: skip
    if as_json:
        body = {
            "precision": result.precision, "recall": result.recall,
            "alerts": result.alerts_total, "false_alerts": len(result.false_alerts),
            "by_kind": result.by_kind(),
            "false_by_rule": result.false_by_rule(),
            "scenarios": [{"id": o.scenario_id, "kind": o.kind, "detected": o.detected,
                           "time_to_detect_s": o.time_to_detect.total_seconds()
                           if o.time_to_detect is not None else None,
                           "alerts": len(o.alerts)} for o in result.outcomes],
        }  # fmt: skip
        out.print_json(json.dumps(body))
        return
    _print_evaluation(result)


SCENARIO_DIR = PROJECT_ROOT / "scenarios"


def _scenario_path(name: str) -> Path:
    """A scenario file given as a path, or by name from ``scenarios/`` (``vneid-outage``)."""
    path = Path(name)
    if path.is_file():
        return path
    named = SCENARIO_DIR / f"{name}.yaml"
    if named.is_file():
        return named
    known = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))) or "none"
    raise SimulationError(f"no scenario file {name!r} (known in {SCENARIO_DIR}/: {known})")


@app.command("live")
@handles_errors
def live_cmd(
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", "-s", help="Scenario file or name in scenarios/ (repeatable)."),
    ] = None,
    speed: Annotated[
        float, typer.Option(help="Simulated seconds per real second.", min=0.01, max=100_000)
    ] = 1.0,
    minutes: Annotated[
        float | None, typer.Option(help="Stop after this much simulated time.", min=0.01)
    ] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Write log files here.")] = None,
    to_es: Annotated[bool, typer.Option("--es", help="Index ECS events directly.")] = False,
    syslog: Annotated[str | None, typer.Option(help="Send syslog to host:port (UDP).")] = None,
    http_push: Annotated[
        str | None,
        typer.Option(help="POST NDJSON to a collector (token: SOC_SIMULATE_PUSH_TOKEN)."),
    ] = None,
    fleet: Annotated[bool, typer.Option(help="Run the mock endpoints for the probes.")] = True,
    fleet_port: Annotated[
        int, typer.Option(help="First port of the fleet (0: any free).", min=0, max=65_000)
    ] = 0,
    seed: SeedOpt = 1,
    scale: ScaleOpt = 1.0,
    province: ProvinceOpt = None,
    labels: Annotated[
        Path | None, typer.Option(help="Labels file [<var>/simulate/live-labels.jsonl].")
    ] = None,
) -> None:
    """Run traffic now, in real time (or faster), with the chosen scenarios; Ctrl-C stops."""
    import json

    from soc.simulate import labels as labels_file
    from soc.simulate.fleet import Fleet
    from soc.simulate.live import run_live

    settings = command_settings()
    labels = labels or settings.var_dir / "simulate" / "live-labels.jsonl"
    start = datetime.now(UTC)
    files = [_scenario_path(name) for name in scenario or []]
    plan = _plan(seed, scale, files, province, start)
    labels_file.write(labels, plan.labels())
    sinks = _live_sinks(settings, out_dir, to_es=to_es, syslog=syslog, http_push=http_push)
    mock = Fleet(tuple(province or ()), base_port=fleet_port) if fleet else None
    if mock is not None:
        mock.start()
        targets = labels.parent / "fleet-targets.json"
        targets.write_text(json.dumps({"targets": mock.targets()}, indent=1))
        out.print(f"mock fleet: {len(mock.targets())} endpoints, list in {targets}")
    for scn in plan.scenarios:
        out.print(f"scenario {scn.id} ({scn.kind.value}) from {scn.start:%H:%M:%S} to "
                  f"{scn.end:%H:%M:%S} UTC", highlight=False, markup=False)  # fmt: skip
    out.print(
        f"live traffic at {speed}x from {start:%H:%M:%S} UTC; labels in {labels}; Ctrl-C stops"
    )
    try:
        report = run_live(plan, sinks, speed=speed, start=start, fleet=mock,
                          duration=timedelta(minutes=minutes) if minutes else None)  # fmt: skip
        out.print(f"{report.records:,} records from {report.start:%H:%M:%S} to "
                  f"{report.end:%H:%M:%S} UTC", highlight=False)  # fmt: skip
    except KeyboardInterrupt:
        out.print("stopped")
    finally:
        if mock is not None:
            mock.stop()


def _live_sinks(settings: Settings, out_dir: Path | None, *, to_es: bool, syslog: str | None,
                http_push: str | None) -> list[Sink]:  # fmt: skip
    """The sinks a live run writes to; log files when nothing else is asked for."""
    from soc.simulate.live import EsSink
    from soc.simulate.sinks import FileSink, HttpPushSink, SyslogSink

    sinks: list[Sink] = []
    if out_dir is not None or not (to_es or syslog or http_push):
        sinks.append(FileSink(out_dir or settings.var_dir / "simulate" / "live"))
    if to_es:
        from soc.es.client import ensure_elasticsearch
        from soc.es.indices import Indices
        from soc.es.templates import Layout, setup

        es, _ = ensure_elasticsearch(settings)
        indices = Indices(settings.index_prefix)
        setup(es, indices, layout=Layout.of(settings))
        sinks.append(EsSink(es, indices))
    if syslog:
        host, _, port = syslog.rpartition(":")
        if not port.isdigit():
            raise SimulationError(f"--syslog {syslog!r}: expected host:port")
        sinks.append(SyslogSink(host or "127.0.0.1", int(port)))
    if http_push:
        token = settings.simulate_push_token
        sinks.append(HttpPushSink(http_push, token=token.get_secret_value() if token else None))
    return sinks


def _print_evaluation(result: Evaluation) -> None:
    from rich.table import Table  # cells are escaped: labels files are user-edited

    table = Table("scenario", "kind", "result", "time to detect", "alerts")
    for column in table.columns[:2]:
        column.overflow = "fold"  # ids are what people look up: wrap them, never cut them
    for o in result.outcomes:
        ttd = str(o.time_to_detect) if o.time_to_detect is not None else "—"
        verdict = "detected" if o.detected else "[red]missed[/]"
        table.add_row(escape(o.scenario_id), escape(o.kind), verdict, ttd, str(len(o.alerts)))
    out.print(table)
    kinds = Table("kind", "scenarios", "detected", "recall", "median time to detect (s)")
    for row in result.by_kind():
        ttd = f"{row['median_ttd_s']:.0f}" if row["median_ttd_s"] is not None else "—"
        kinds.add_row(escape(row["kind"]), str(row["scenarios"]), str(row["detected"]),
                      f"{row['recall']:.0%}", ttd)  # fmt: skip
    out.print(kinds)
    noisy = ", ".join(f"{escape(rule)} {n}" for rule, n in result.false_by_rule().items())
    if noisy:
        out.print(f"false alerts by rule: {noisy}", highlight=False)
    precision = f"{result.precision:.1%}" if result.precision is not None else "— (no alerts)"
    recall = f"{result.recall:.1%}" if result.recall is not None else "— (no scenarios)"
    out.print(f"alerts: {result.alerts_total}, false alerts (outside any scenario): "
              f"{len(result.false_alerts)}; precision {precision}, recall {recall}",
              highlight=False)  # fmt: skip
