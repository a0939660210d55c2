"""The main job's preparation: Elasticsearch, templates, history, model, and the demo's own files.

Each step is idempotent so that a second ``soc demo`` reuses what the first one left: the history
is recorded in ``var/demo/backfill.json`` and checked against the store, the anomaly model is
trained only when none exists, the generated files are rewritten identically. Progress goes to a
callback; this module prints nothing and starts no long-running process (see ``supervisor``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from elasticsearch import Elasticsearch

from soc.config import Settings
from soc.demo.models import DemoOptions, DemoPaths
from soc.es.client import ensure_elasticsearch
from soc.es.indices import Indices
from soc.es.templates import Layout, SetupReport, setup

log = logging.getLogger(__name__)

#: (done, total) hours of history indexed so far.
Progress = Callable[[int, int], None]

#: Scenario kinds the live demo cycles through: each one is caught by a Sigma rule within
#: seconds, so a visitor sees alert → incident → email while watching. Attack rates are those of
#: a slow script (one OTP guess a second; two failed logins a second over four addresses), so the
#: correlation rules' thresholds (8 guesses, 20 failures) are crossed in about ten seconds.
ROTATION: tuple[dict[str, Any], ...] = (
    {"kind": "web_attack", "rate_per_minute": 30},
    {"kind": "otp_brute_force", "rate_per_minute": 60},
    {"kind": "vneid_outage"},
    {"kind": "credential_stuffing", "rate_per_minute": 120},
)
#: Scenarios are written for this much of a live run; a longer run simply has calm traffic after.
SCHEDULE_SPAN = timedelta(hours=24)
SCENARIO_LENGTH = "4m"
MAX_SCENARIOS = 360


@dataclass(frozen=True)
class Prepared:
    es_started: bool
    setup: SetupReport
    backfill: str
    model: str


def prepare(
    settings: Settings, options: DemoOptions, *, on_progress: Progress | None = None
) -> Prepared:
    """Everything before the processes start; safe to repeat."""
    es, started = ensure_elasticsearch(settings)
    indices = Indices(settings.index_prefix)
    report = setup(es, indices, layout=Layout.of(settings))
    history = ensure_history(es, indices, settings, options, on_progress=on_progress)
    model = ensure_model(es, indices, settings) if options.train else "not trained (--no-train)"
    return Prepared(es_started=started, setup=report, backfill=history, model=model)


def ensure_history(
    es: Elasticsearch,
    indices: Indices,
    settings: Settings,
    options: DemoOptions,
    *,
    on_progress: Progress | None = None,
) -> str:
    """Backfill ``options.backfill_days`` of history unless a previous run left it there.

    The record (``var/demo/backfill.json``) is rewritten after every step, so an interrupted
    backfill resumes where it stopped (same window, the steps already indexed skipped) instead of
    starting from zero; a step indexed twice is absorbed by the deterministic ids.
    """
    from soc.simulate.service import Plan, floor_hour

    if options.backfill_days <= 0:
        return "no history asked for"
    paths = DemoPaths.of(settings)
    record = _read_record(paths.backfill_record, settings.index_prefix)
    if record is not None and record.get("complete", True):
        found = _stored_enough(es, indices, record, record["end"])
        if found is not None:
            return (
                f"reused: {found:,} events from {record['start'][:16]} to {record['end'][:16]} UTC"
            )
        record = None
    if record is not None and _stored_enough(es, indices, record, record["done_until"]) is None:
        record = None  # the store lost what the record says was indexed: start over
    if record is None:
        end = floor_hour(datetime.now(UTC))
        start = end - timedelta(days=options.backfill_days)
        record = {"prefix": settings.index_prefix, "start": start.isoformat(),
                  "end": end.isoformat(), "done_until": start.isoformat(), "events": 0,
                  "complete": False}  # fmt: skip
    resumed_from = record["done_until"] if record["done_until"] != record["start"] else None
    # No scenarios in the history: the anomaly model's baseline must be clean traffic.
    plan = Plan(seed=1, scale=options.scale)
    steps = _hour_steps(
        datetime.fromisoformat(record["start"]), datetime.fromisoformat(record["end"])
    )
    done_until = datetime.fromisoformat(record["done_until"])
    if on_progress is not None:  # the total (and where a resumed run starts) before any work
        on_progress(sum(1 for _, b in steps if b <= done_until), len(steps))
    created = duplicates = 0
    for n, (a, b) in enumerate(steps, start=1):
        if b <= done_until:
            continue
        step_created, step_duplicates = _backfill_step(es, indices, plan, a, b)
        created, duplicates = created + step_created, duplicates + step_duplicates
        record.update(done_until=b.isoformat(), events=int(record["events"]) + step_created
                      + step_duplicates)  # fmt: skip
        _write(paths.backfill_record, json.dumps(record, indent=1))
        if on_progress is not None:
            on_progress(n, len(steps))
    record["complete"] = True
    _write(paths.backfill_record, json.dumps(record, indent=1))
    how = f"resumed from {resumed_from[:16]}: " if resumed_from else ""
    return (f"{how}{created:,} events indexed ({duplicates:,} already there), "
            f"{record['start'][:16]} → {record['end'][:16]} UTC")  # fmt: skip


def _backfill_step(
    es: Elasticsearch, indices: Indices, plan: Any, start: datetime, end: datetime
) -> tuple[int, int]:
    from soc.errors import SocError
    from soc.simulate.flows import backfill

    done = backfill(es, indices, plan, start, end)
    if done.rejected:
        raise SocError(f"backfill {start:%Y-%m-%d %H:%M}: {len(done.rejected)} events rejected, "
                       f"first: {done.rejected[0]}")  # fmt: skip
    return done.created, done.duplicates


def _hour_steps(start: datetime, end: datetime, hours: int = 6) -> list[tuple[datetime, datetime]]:
    steps, at = [], start
    while at < end:
        nxt = min(at + timedelta(hours=hours), end)
        steps.append((at, nxt))
        at = nxt
    return steps


def _read_record(path: Path, prefix: str) -> dict[str, Any] | None:
    """The previous run's backfill record if it is for this prefix."""
    try:
        record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("prefix") != prefix or not {"start", "end", "events"} <= record.keys():
        return None
    record.setdefault("done_until", record["end"])  # a record of an older soc: complete
    return record


def _stored_enough(
    es: Elasticsearch, indices: Indices, record: dict[str, Any], until: str
) -> int | None:
    """How many events the store holds from the record's start to ``until``, if at least as
    many as the record says were indexed."""
    window = {"range": {"@timestamp": {"gte": record["start"], "lt": until}}}
    es.indices.refresh(index=indices.events, allow_no_indices=True, ignore_unavailable=True)
    count = int(es.count(index=indices.events, query=window, allow_no_indices=True,
                         ignore_unavailable=True)["count"])  # fmt: skip
    return count if count >= int(record["events"]) else None


def ensure_model(es: Elasticsearch, indices: Indices, settings: Settings) -> str:
    """Train the anomaly model unless one is saved already."""
    try:
        from detectors.anomaly import flows as anomaly
        from detectors.anomaly.baseline import persistence
    except ImportError as exc:
        return f"anomaly model unavailable: {exc}"
    from soc.errors import ModelNotFoundError, ModelVersionError

    try:
        path = persistence.latest(settings.var_dir)
        persistence.load(path)
        return f"reused {path}"
    except (ModelNotFoundError, ModelVersionError):
        pass
    _, path = anomaly.train(es, indices, settings, datetime.now(UTC))
    return f"trained {path}"


# ------------------------------------------------------------------ generated files
def secret_file(path: Path) -> str:
    """A random secret kept in a 0600 file, so a second run reuses the same one."""
    try:
        value = path.read_text(encoding="utf-8").strip()
        if value:
            return value
    except OSError:
        pass
    value = secrets.token_urlsafe(12)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    return value


def write_scenarios(paths: DemoPaths, options: DemoOptions) -> Path:
    """The live demo's schedule: one scenario every ``scenario_every`` seconds from
    ``first_scenario``,
    rotating kind and province; checked with the simulator's own loader before use."""
    from soc.localities import catalogue
    from soc.simulate import scenarios

    cat = catalogue()
    provinces = cat.provinces
    count = max(1, min(MAX_SCENARIOS, int(SCHEDULE_SPAN.total_seconds() // options.scenario_every)))
    entries = []
    for n in range(count):
        province = provinces[(n * 7) % len(provinces)]  # stride 7: neighbours differ
        base = ROTATION[n % len(ROTATION)]
        ward = cat.wards_of(province.code)[0].code
        offset = int(options.first_scenario + n * options.scenario_every)
        entry = {"id": f"demo-{n:04d}-{base['kind'].replace('_', '-')}", **base,
                 "province": province.code, "start": f"+{offset}s",
                 "duration": SCENARIO_LENGTH}  # fmt: skip
        if base["kind"] in ("web_attack", "otp_brute_force"):
            entry["ward"] = ward
        entries.append(entry)
    text = "# Written by soc demo: the live scenarios, one every few minutes.\n"
    _write(paths.scenarios, text + yaml.safe_dump({"scenarios": entries}, sort_keys=False))
    scenarios.load(paths.scenarios, cat, datetime.now(UTC))  # raises ScenarioError with file:key
    return paths.scenarios


def probe_targets(options: DemoOptions) -> list[dict[str, Any]]:
    """Province-level endpoints of the simulator's mock fleet (``--fleet-port``: province i on
    port + i); commune portals are left out so the probes stay a few per second."""
    from soc.localities import catalogue
    from soc.simulate.fleet import KEYWORD, PROVINCE_SERVICES

    out = []
    for i, province in enumerate(catalogue().provinces):
        port = options.fleet_port + i
        for service in PROVINCE_SERVICES:
            out.append({"name": f"{service.value}-{province.code}", "service": service.value,
                        "province": province.code, "keyword": KEYWORD,
                        "url": f"http://127.0.0.1:{port}/{service.value}/health"})  # fmt: skip
    return out


def write_collector_config(paths: DemoPaths, settings: Settings, options: DemoOptions) -> Path:
    """The demo collector: the live log files, HTTP push, and probes of the mock fleet."""
    from soc.simulate.sinks import inventory_yaml

    paths.live_logs.mkdir(parents=True, exist_ok=True)
    inventory = yaml.safe_load(inventory_yaml(paths.live_logs))
    token = secret_file(paths.push_token)
    inventory["systems"].append(
        {"id": "simulator-push", "token_sha256": hashlib.sha256(token.encode()).hexdigest()}
    )
    sources: list[dict[str, Any]] = [
        {"id": "files", "type": "file", "paths": [f"{paths.live_logs.resolve()}/**/*.log"],
         "poll_interval": 0.5},
        {"id": "push", "type": "http", "port": options.push_port},
    ]  # fmt: skip
    if options.live:
        sources.append({"id": "probes", "type": "probe", "interval": options.probe_interval,
                        "report_every": options.probe_report_every, "timeout": 5,
                        "targets": probe_targets(options)})  # fmt: skip
    body = {
        "collector": {"id": "demo", "state_dir": str(paths.collector_state.resolve()),
                      "spool_max_mb": settings.demo_spool_max_mb, "flush_interval": 0.5,
                      "batch_size": 2000, "retry_max": 5.0},
        "inventory": inventory,
        "sources": sources,
    }  # fmt: skip
    text = "# Written by soc demo (rewritten on every run).\n"
    _write(paths.collector_config, text + yaml.safe_dump(body, sort_keys=False,
                                                         allow_unicode=True))  # fmt: skip
    return paths.collector_config


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
