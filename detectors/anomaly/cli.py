"""``soc anomaly ...``: train the model, score a past period, score a CSV (registered in soc.cli).

Commands only parse options, show progress and call :mod:`detectors.anomaly.flows` or
:mod:`detectors.anomaly.csvscore`; the work is there.
"""

from __future__ import annotations

import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from detectors.base import aligned_windows
from soc.commands import command_settings, handles_errors, lazy_module
from soc.errors import AnomalyError

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from detectors.anomaly import csvscore, flows
    from detectors.anomaly.baseline import persistence
    from soc.config import Settings
    from soc.es.indices import Indices
else:  # scikit-learn, scipy and the Elasticsearch client load when a command runs, not for --help
    csvscore = lazy_module("detectors.anomaly.csvscore")
    flows = lazy_module("detectors.anomaly.flows")
    persistence = lazy_module("detectors.anomaly.baseline.persistence")

out = Console()
err = Console(stderr=True)

app = typer.Typer(
    help="The anomaly model: train it, score past periods or any CSV series.", no_args_is_help=True
)


def _when(text: str | None, default: datetime, option: str) -> datetime:
    if text is None:
        return default
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise AnomalyError(f"{option} {text!r}: not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise AnomalyError(f"{option} {text!r}: needs an offset, e.g. +07:00 or Z")
    return value.astimezone(UTC)


def _client(settings: Settings) -> tuple[Elasticsearch, Indices]:
    from soc.es.client import make_client, wait_until_healthy
    from soc.es.indices import Indices
    from soc.es.templates import Layout, setup

    es = make_client(settings)
    wait_until_healthy(es, timeout=settings.es_wait_timeout, settings=settings)
    indices = Indices(settings.index_prefix)
    setup(es, indices, layout=Layout.of(settings))
    return es, indices


@app.command("train")
@handles_errors
def train(
    end: Annotated[str | None, typer.Option(help="End of history (ISO 8601); default now.")] = None,
    days: Annotated[int | None, typer.Option(min=1, help="Days of history to learn.")] = None,
) -> None:
    """Learn the seasonal baseline from the history before END and save a new model version."""
    settings = command_settings()
    es, indices = _client(settings)
    until = _when(end, datetime.now(UTC), "--end")
    total = (days or settings.anomaly_training_days) * 24
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("aggregating hours", total=total)
        model, path = flows.train(
            es, indices, settings, until, days=days, progress=lambda n: progress.advance(task, n)
        )
    out.print(
        f"trained on {model.start:%Y-%m-%d %H:%M} - {model.end:%Y-%m-%d %H:%M} UTC: "
        f"{len(model.baselines)} locality/service series, model version {model.version}",
        highlight=False,
    )
    out.print(f"saved {escape(str(path))}", highlight=False)


@app.command("score")
@handles_errors
def score(
    start: Annotated[str, typer.Option(help="Start of the period (ISO 8601 with offset).")],
    end: Annotated[str, typer.Option(help="End of the period (ISO 8601 with offset).")],
    model_file: Annotated[Path | None, typer.Option("--model", help="Model file.")] = None,
) -> None:
    """Score a past period bucket by bucket and store its alerts (re-running doubles nothing)."""
    settings = command_settings()
    model = (
        persistence.load(model_file) if model_file else persistence.load_latest(settings.var_dir)
    )
    es, indices = _client(settings)
    now = datetime.now(UTC)
    since, until = _when(start, now, "--start"), _when(end, now, "--end")
    windows = list(aligned_windows(since, until, flows.bucket_of(settings)))
    kinds: Counter[str] = Counter()
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("scoring buckets", total=len(windows))
        for w in windows:
            for alert in flows.evaluate(
                es, indices, w.start, w.end, model=model, settings=settings
            ):
                kinds[alert.rule.id] += 1
            progress.advance(task)
    out.print(f"{len(windows)} buckets scored, {sum(kinds.values())} alerts", highlight=False)
    for rule_id, count in sorted(kinds.items()):
        out.print(f"  {escape(rule_id)}: {count}", highlight=False)


@app.command("score-csv")
@handles_errors
def score_csv(
    paths: Annotated[list[Path], typer.Argument(help="CSV file(s): timestamp,value[,value...]")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="One file's output (default: stdout).")
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option("--output-dir", "-d", help="Several files: each written here, same name."),
    ] = None,
    method: Annotated[
        str, typer.Option(help="stream (the live engine, causal) or iforest (whole file).")
    ] = "stream",
    threshold: Annotated[
        float | None,
        typer.Option(min=0.01, max=1.0, help="Stream engine alert score (default: its own)."),
    ] = None,
    holidays: Annotated[
        bool, typer.Option(help="Local time UTC+7 and Vietnam's holidays as rest days.")
    ] = False,
) -> None:
    """Write every row with an anomaly score in [0, 1] and a flag (1 = an episode starts).

    Several files are scored together in one pass of the engine (each its own series), so
    scoring a whole benchmark costs one start-up.
    """
    from detectors.anomaly.stream import PLAIN, VIETNAM, Engine, EngineConfig

    targets = _targets(paths, output, output_dir)
    config = EngineConfig() if threshold is None else EngineConfig(alert_score=threshold)
    engine = Engine(config, calendar=VIETNAM if holidays else PLAIN)
    files = [csvscore.read(path) for path in paths]
    for path, target, scored in zip(
        paths, targets, csvscore.score_many(files, method=method, engine=engine), strict=True
    ):
        if target is None:
            csvscore.write(scored, sys.stdout)
        else:
            with target.open("w", encoding="utf-8", newline="") as handle:
                csvscore.write(scored, handle)
        flagged = int(scored.flags.sum())
        err.print(
            f"{escape(str(path))}: {len(scored.scores)} rows scored ({method}), {flagged} flagged",
            highlight=False,
        )


def _targets(paths: list[Path], output: Path | None, output_dir: Path | None) -> list[Path | None]:
    """Where each file's scores go: ``--output`` (one file), ``--output-dir``, or stdout."""
    if output is not None and output_dir is not None:
        raise AnomalyError("give --output or --output-dir, not both")
    if output_dir is None:
        if len(paths) > 1:
            raise AnomalyError(f"{len(paths)} files: give --output-dir for their outputs")
        return [output]
    names = [path.name for path in paths]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise AnomalyError(f"two input files named {twice[0]!r}: score them in separate runs")
    output_dir.mkdir(parents=True, exist_ok=True)
    return [output_dir / name for name in names]
