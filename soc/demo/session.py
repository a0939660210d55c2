"""One run of ``soc demo``: prepare, start the children, tell the user where things are, watch,
and stop everything on Ctrl-C/SIGTERM (or after ``options.duration``).

Messages go through ``say`` (the CLI passes its console); this module holds the order of the
steps, not their substance (``flows`` prepares, ``children`` builds commands, ``supervisor`` runs
them).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from soc.config import Settings
from soc.demo import children, flows
from soc.demo.models import DemoOptions, DemoPaths
from soc.demo.supervisor import Supervisor

log = logging.getLogger(__name__)

Say = Callable[[str], None]


class _Stop(BaseException):
    """Raised from the SIGTERM handler so that SIGTERM stops like Ctrl-C.

    A BaseException, as KeyboardInterrupt is: raised in the middle of a request, an ``except
    Exception`` in a library (the Elasticsearch transport retries on any Exception) would take it
    for a failed request and carry on with the backfill."""


@dataclass(frozen=True)
class Outcome:
    exit_codes: dict[str, int | None]
    restarts: dict[str, int]


def run(settings: Settings, options: DemoOptions, *, say: Say,
        progress: flows.Progress | None = None, anomaly: bool = True) -> Outcome:  # fmt: skip
    """The whole demo. Ctrl-C/SIGTERM are handled from the first line on: stopping during the
    backfill stops the node the demo started too (the backfill resumes on the next run)."""
    from soc.es.launcher import LocalNode

    previous = signal.signal(signal.SIGTERM, _raise_stop)
    # Ctrl-C must reach us even when started from a shell that ignores SIGINT (a background job).
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    node = LocalNode(settings) if settings.managed_es else None
    ours = node is not None and node.pid() is None  # stopped at the end only if we start it
    sups: list[Supervisor] = []
    codes: dict[str, int | None] = {}
    try:
        _run_steps(settings, options, say, progress, anomaly, sups)
    except (KeyboardInterrupt, _Stop):
        say("stopping…")
    finally:
        # A second Ctrl-C/SIGTERM must not interrupt the orderly stop.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            codes = sups[0].stop() if sups else {}
            if ours and node is not None and node.stop():
                say("  Elasticsearch stopped (data kept; the next run reuses it)")
        finally:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_int)
    say("stopped: " + (", ".join(f"{k} ({v})" for k, v in codes.items()) or "before the processes"))
    restarts = {c.spec.name: c.restarts for c in sups[0].children} if sups else {}
    return Outcome(codes, restarts)


def _run_steps(settings: Settings, options: DemoOptions, say: Say,
               progress: flows.Progress | None, anomaly: bool,
               sups: list[Supervisor]) -> None:  # fmt: skip
    """Steps 1 to 4, then watch until stopped; the supervisor is handed back through ``sups``
    as soon as it exists, so that the caller stops whatever was started."""
    paths = DemoPaths.of(settings)
    say("[1/4] Elasticsearch, templates, history and model")
    prepared = flows.prepare(settings, options, on_progress=progress)
    es_line = "started" if prepared.es_started else "already running"
    say(f"  Elasticsearch {settings.effective_es_url} ({es_line})")
    say(f"  history: {prepared.backfill}")
    say(f"  anomaly model: {prepared.model}")
    say("[2/4] demo files")
    password = flows.secret_file(paths.password)
    token = flows.secret_file(paths.push_token)
    if options.live:
        flows.write_scenarios(paths, options)
    flows.write_collector_config(paths, settings, options)
    say(f"  {paths.root}")
    say("[3/4] starting the processes")
    # The children inherit the user's environment (PATH, SOC_* overrides) plus the demo's own.
    env = children.child_env(settings, os.environ, password=password, push_token=token)
    sup = Supervisor(children.child_specs(settings, options, paths, anomaly=anomaly),
                     logs=paths.process_logs, env=env, stop_timeout=settings.demo_stop_timeout,
                     pid_file=paths.pids, hold_dir=paths.hold)  # fmt: skip
    sups.append(sup)
    sup.start()
    for name, pid in sup.pids().items():
        say(f"  {name:<10} pid {pid:<7} log {sup.log_path(name)}")
    _wait_ready(settings, sup, say)
    _tell_where(settings, options, paths, password, say)
    _watch(sup, options, say)


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _wait_ready(settings: Settings, sup: Supervisor, say: Say, timeout: float = 120.0) -> None:
    """Wait until the API answers /health and the mail sink accepts connections."""
    deadline = time.monotonic() + timeout
    api = f"http://{settings.api_host}:{settings.api_port}/api/v1/health"
    api_ok = smtp_ok = False
    while time.monotonic() < deadline and not (api_ok and smtp_ok):
        for line in sup.check():
            say(f"  ! {line}")
        api_ok = api_ok or _http_ok(api)
        smtp_ok = smtp_ok or _port_open(settings.smtp_host, settings.smtp_port)
        time.sleep(0.3)
    if not api_ok:
        say(f"  ! the API did not answer {api} within {timeout:.0f} s; see its log")
    if not smtp_ok:
        say(f"  ! the mail sink is not listening on {settings.smtp_host}:{settings.smtp_port}")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - our own loopback URL
            return bool(resp.status == 200)
    except OSError:
        return False


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _tell_where(settings: Settings, options: DemoOptions, paths: DemoPaths, password: str,
                say: Say) -> None:  # fmt: skip
    say("[4/4] the SOC is running")
    say(f"  dashboard:  {children.dashboard_url(settings)}")
    say(f"  API docs:   http://{settings.api_host}:{settings.api_port}/api/v1/docs")
    say(f"  mail sink:  smtp://{settings.smtp_host}:{settings.smtp_port}, mailbox {paths.mail} "
        "(read it with: soc notify inbox)")  # fmt: skip
    say(f"  demo users (password {password!s}, kept in {paths.password}):")
    for cred in children.DEMO_USERS:
        say(f"    {cred.user:<9} {cred.role:<14} {cred.scope}")
    if options.live:
        say(f"  live traffic: scale {options.scale:g} (≈{280_000 * options.scale / 86400:.1f} "
            f"events/s on average), a scenario every {options.scenario_every:.0f} s from "
            f"{options.first_scenario:.0f} s ({paths.scenarios})")  # fmt: skip
    say("  Ctrl-C stops everything.")


def _watch(sup: Supervisor, options: DemoOptions, say: Say) -> None:
    stop_at = time.monotonic() + options.duration if options.duration > 0 else None
    while stop_at is None or time.monotonic() < stop_at:
        for line in sup.check():
            say(f"  ! {line}")
        time.sleep(0.5)
