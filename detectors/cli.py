"""``soc rules …`` and ``soc detect …``: the command line of the Sigma detection engine.

Commands parse arguments, call :mod:`detectors.sigma.service` or :mod:`detectors.scheduling`
and print; no detection logic lives here. Registered in ``soc/cli.py``.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from detectors.base import parse_duration
from soc.commands import command_settings, handles_errors, lazy_module
from soc.errors import ConfigError, RuleError

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from detectors.sigma import service
    from soc.config import Settings
else:  # pySigma and scipy load when a command runs, not for `soc rules --help`
    service = lazy_module("detectors.sigma.service")

out = Console()
err = Console(stderr=True)

rules_app = typer.Typer(help="Sigma rules: validate, test, convert, backtest, tune.",
                        no_args_is_help=True)  # fmt: skip
detect_app = typer.Typer(help="Run the Sigma rules on schedule.", no_args_is_help=True)

RuleArg = Annotated[str, typer.Argument(help="Rule id or name.")]


def _es() -> tuple[Settings, Elasticsearch]:
    from soc.es.client import make_client, wait_until_healthy

    settings = command_settings()
    es = make_client(settings)
    wait_until_healthy(es, timeout=30, settings=settings)
    return settings, es


@rules_app.command("list")
@handles_errors
def rules_list() -> None:
    """List the rules: id, name, kind, level, file."""
    loaded = service.load(settings=command_settings())
    for r in loaded.rules:
        role = "" if r.alerts else "  (feeds a correlation)"
        out.print(f"{r.id}  {r.name or '-'}  {r.kind.value}  {r.level.value}  {r.where}{role}",
                  highlight=False, markup=False)  # fmt: skip


@rules_app.command("validate")
@handles_errors
def rules_validate() -> None:
    """Load and compile every rule; report errors with file and line, and pySigma's findings."""
    settings = command_settings()
    loaded = service.load(settings=settings)
    for error in loaded.errors:
        typer.echo(f"error: {error}", err=True)
    from detectors.sigma.sources import load_sources

    sources = load_sources(service.rules_dir(settings))  # rules/sources.yaml: errors file:line
    for folder, indices, own in sources.folders:
        also = " and soc's events" if own else ""
        out.print(f"rules under {folder}/ search {', '.join(indices)}{also}", highlight=False,
                  markup=False)  # fmt: skip
    issues = service.lint(settings=settings)
    for issue in issues:
        typer.echo(f"warning: {issue}", err=True)
    out.print(f"{len(loaded.rules)} rules loaded, {len(loaded.errors)} with errors, "
              f"{len(issues)} validator findings", highlight=False)  # fmt: skip
    if loaded.errors:
        raise typer.Exit(1)


@rules_app.command("convert")
@handles_errors
def rules_convert(rule: RuleArg) -> None:
    """Show the Elasticsearch query of a rule (correlations: each base query and the grouping)."""
    r = service.load(settings=command_settings()).get(rule)
    if not r.kind.is_correlation:
        typer.echo(r.query)
        return
    out.print(f"{r.kind.value} by {', '.join(r.group_by) or '-'} within {r.timespan}, "
              f"condition {r.condition}", highlight=False, markup=False)  # fmt: skip
    for rule_id, query in r.base:
        typer.echo(f"  {rule_id}: {query}")
    if r.ratio is not None:  # soc's extension (docs/detection.md)
        x = r.ratio
        out.print(f"ratio against {x.of} within {', '.join(x.within)}, baseline {x.baseline} "
                  f"per {', '.join(x.baseline_by)}: binomial tail <= {x.alpha:g} / events an "
                  f"hour, ratio >= {x.lift:g}x baseline and >= {x.min_ratio:g}",
                  highlight=False, markup=False)  # fmt: skip
        typer.echo(f"  {x.of}: {x.of_query}")


@rules_app.command("test")
@handles_errors
def rules_test(
    rule: Annotated[str | None, typer.Argument(help="Rule id or name; all when omitted.")] = None,
) -> None:
    """Run rules' must-fire / must-not test events against Elasticsearch (scratch indices).

    Every rule with a tests file is tested; rules without one are listed, not failed. The exit
    status is 1 only when a case fails (or the one RULE named has no tests)."""
    settings, es = _es()
    loaded = service.load(settings=settings)
    chosen = [loaded.get(rule)] if rule else list(loaded.runnable)
    if rule and chosen[0].tests is None:
        raise RuleError(f"rule {chosen[0].title!r} ships no tests file (<rule>.tests.yaml)",
                        chosen[0].path, chosen[0].line)  # fmt: skip
    failed = cases = 0
    untested = [r for r in chosen if r.tests is None]
    tested = service.test_rules(es=es, settings=settings, rules=[r for r in chosen if r.tests])
    for r, results in tested:
        for result in results:
            mark = "ok  " if result.passed else "FAIL"
            failed += not result.passed
            cases += 1
            out.print(f"{mark} {r.name or r.id}  {result.expect}: {escape(result.name)} "
                      f"({result.findings} alerts)", highlight=False)  # fmt: skip
    for r in untested:
        out.print(f"no tests  {r.name or r.id}  {r.where}", highlight=False, markup=False)
    out.print(f"{cases} cases, {failed} failed; {len(chosen) - len(untested)} rules tested, "
              f"{len(untested)} without tests", highlight=False)  # fmt: skip
    if failed:
        raise typer.Exit(1)


@rules_app.command("backtest")
@handles_errors
def rules_backtest(
    rule: RuleArg,
    since: Annotated[str, typer.Option(help="How far back: 30m, 24h, 7d.")] = "7d",
) -> None:
    """How many alerts a rule would have raised, per locality (writes nothing)."""
    settings, es = _es()
    r = service.load(settings=settings).get(rule)
    span = _duration(since)
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task("evaluating windows", total=None)
        result = service.backtest(es=es, settings=settings, rule=r, since=span,
                                  progress=lambda done, total: bar.update(task, completed=done,
                                                                          total=total))  # fmt: skip
    out.print(f"{r.title}: {result.alerts} alerts over {result.windows} windows of "
              f"{r.interval}", highlight=False, markup=False)  # fmt: skip
    for place, count in result.by_locality:
        out.print(f"  {count:6d}  {place}", highlight=False, markup=False)
    out.print(f"{result.events} matched events; the first {len(result.sample)}:",
              highlight=False, markup=False)  # fmt: skip
    for event in result.sample:
        out.print(f"  {_describe(event)}", highlight=False, markup=False)


@rules_app.command("import")
@handles_errors
def rules_import(
    folder: Annotated[Path, typer.Argument(help="Folder of Sigma rules (*.yml), e.g. SigmaHQ's.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report only; copy nothing.")] = False,
    into: Annotated[str, typer.Option(help="Folder of the rules dir to copy into.")] = "imported",
) -> None:
    """Import a folder of community rules: validate each, report what cannot run on soc's
    events, copy the rest to rules/imported/ disabled (enable each with `soc rules enable`)."""
    from detectors.sigma import imports

    settings = command_settings()
    report = imports.examine(settings=settings, source=folder, into=into)
    for entry in report.entries:
        for reason in entry.reasons:
            out.print(f"{entry.verdict.value:10}  {reason}", highlight=False, markup=False)
        for r in entry.rules:
            out.print(f"{entry.verdict.value:10}  {entry.file}:{r.line}  {r.id}  {r.title}",
                      highlight=False, markup=False)  # fmt: skip
    ready = report.count(imports.Verdict.READY)
    if ready and not dry_run:
        settings, es = _es()
        imports.apply(es=es, settings=settings, source=folder, report=report,
                      by=getpass.getuser())  # fmt: skip
    done = "would be imported" if dry_run else f"imported into {report.target}, disabled"
    out.print(f"{ready} files {done}; {report.count(imports.Verdict.CANNOT_RUN)} cannot run on "
              f"soc's events; {report.count(imports.Verdict.ERROR)} with errors",
              highlight=False, markup=False)  # fmt: skip
    if ready and not dry_run:
        out.print("enable a rule after a backtest: soc rules enable RULE [RULE...]",
                  highlight=False, markup=False)  # fmt: skip
    if report.count(imports.Verdict.ERROR):
        raise typer.Exit(1)


@rules_app.command("enable")
@handles_errors
def rules_enable(
    rule: Annotated[list[str], typer.Argument(help="Rule ids or names.")],
) -> None:
    """Run the rules (again)."""
    settings, es = _es()
    loaded = service.load(settings=settings)
    for r in [loaded.get(key) for key in rule]:
        service.set_enabled(es=es, settings=settings, rule=r, on=True, by=getpass.getuser())
        out.print(f"enabled {r.title}", highlight=False, markup=False)


@rules_app.command("disable")
@handles_errors
def rules_disable(rule: RuleArg) -> None:
    """Stop running the rule; `enable` later resumes from that moment (no replay)."""
    settings, es = _es()
    r = service.load(settings=settings).get(rule)
    service.set_enabled(es=es, settings=settings, rule=r, on=False, by=getpass.getuser())
    out.print(f"disabled {r.title}", highlight=False, markup=False)


@rules_app.command("threshold")
@handles_errors
def rules_threshold(
    rule: RuleArg,
    province: Annotated[str, typer.Argument(help="Province code or name.")],
    count: Annotated[int | None, typer.Argument(help="New threshold; omit to reset.")] = None,
) -> None:
    """Override a correlation's threshold for one province."""
    settings, es = _es()
    r = service.load(settings=settings).get(rule)
    service.set_threshold(es=es, settings=settings, rule=r, province=province, count=count,
                          by=getpass.getuser())  # fmt: skip
    out.print(f"{r.title}: threshold for {province} is now {count or 'the default'}",
              highlight=False, markup=False)  # fmt: skip


@rules_app.command("except")
@handles_errors
def rules_except(
    rule: RuleArg,
    field: Annotated[str, typer.Argument(help="ECS field, e.g. source.ip.")],
    value: str,
    reason: Annotated[str, typer.Option(help="Why (shown to analysts).")],
    expires: Annotated[str, typer.Option(help="Lifetime from now: 2h, 7d …")],
    author: Annotated[str | None, typer.Option(help="Who decided (default: you).")] = None,
) -> None:
    """Suppress a rule's matches where FIELD equals VALUE, with a reason and an expiry."""
    settings, es = _es()
    r = service.load(settings=settings).get(rule)
    until = datetime.now(UTC) + _duration(expires)
    from detectors.sigma.search import Exception_

    service.add_exception(es=es, settings=settings, rule=r, exception=Exception_(
        field=field, value=value, reason=reason, author=author or getpass.getuser(),
        expires=until,
    ))  # fmt: skip
    out.print(f"{r.title}: {field}={value} suppressed until {until:%Y-%m-%d %H:%M} UTC",
              highlight=False, markup=False)  # fmt: skip


@rules_app.command("health")
@handles_errors
def rules_health() -> None:
    """Per rule: last run, windows evaluated, alerts, windows behind, last error."""
    settings, es = _es()
    loaded = service.load(settings=settings)
    checkpoints = service.health(es=es, settings=settings, rules=loaded)
    for r in loaded.runnable:
        cp = checkpoints[r.id]
        last = f"{cp.last_run:%Y-%m-%d %H:%M:%S}" if cp.last_run else "never"
        out.print(f"{r.name or r.id}: last run {last}, {cp.windows} windows, {cp.alerts} alerts, "
                  f"{cp.behind} behind, error: {cp.error or '-'}", highlight=False,
                  markup=False)  # fmt: skip


@detect_app.command("run")
@handles_errors
def detect_run(
    once: Annotated[bool, typer.Option("--once", help="One tick, then exit.")] = False,
) -> None:
    """Run the rules on schedule (APScheduler), holding the lease; Ctrl-C stops."""
    from detectors.scheduling import Detect

    detect = Detect(command_settings())
    if not once:
        detect.run_forever()
        return
    report = detect.tick()
    if report is None:
        out.print("standby: another soc detect holds the lease")
        return
    out.print(f"{report.searches} searches, {report.windows} windows, {report.alerts_created} "
              f"alerts written, {report.alerts_existing} already there, {len(report.errors)} "
              f"rule errors, {sum(report.behind.values())} windows behind",
              highlight=False)  # fmt: skip
    for rule_id, error in report.errors.items():
        err.print(f"rule {rule_id}: {error}", highlight=False, markup=False)


def _describe(event: dict[str, Any], prefix: str = "") -> str:
    """A matched event on one line: ``field=value`` pairs, nested objects flattened."""
    pairs: list[str] = []
    for key, value in event.items():
        if key.startswith("_") and not prefix:
            continue
        if isinstance(value, dict):
            pairs.append(_describe(value, f"{prefix}{key}."))
        else:
            pairs.append(f"{prefix}{key}={value}")
    return " ".join(p for p in pairs if p)


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
