"""The demo's child processes: each one is a public soc command, configured through ``SOC_*``.

This module only builds command lines and environments; the supervisor runs them. Every port and
address comes from the settings (``SOC_API_PORT``, ``SOC_SMTP_PORT``, ...) or the demo options.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from soc.config import Settings
from soc.demo.models import ChildSpec, Credential, DemoOptions, DemoPaths
from soc.notify.demo_routes import DEMO_ROUTES_FILE

#: The demo users ``soc.auth`` creates in development mode from ``SOC_AUTH_DEMO_PASSWORD``.
DEMO_USERS = (
    Credential("admin", "admin", "every province; rules and users"),
    Credential("analyst", "analyst", "every province; triage"),
    Credential("hanoi-it", "provincial_it", "Hà Nội (01) only"),
)


def _soc(*args: str) -> tuple[str, ...]:
    # The same interpreter as the supervisor: a fresh clone's .venv, no PATH lookup.
    return (sys.executable, "-m", "soc.cli", *args)


def api_argv(settings: Settings) -> tuple[str, ...]:
    """uvicorn on ``soc.app:create_app``, quiet: warnings only and no access log."""
    return (sys.executable, "-m", "uvicorn", "soc.app:create_app", "--factory",
            "--host", settings.api_host, "--port", str(settings.api_port),
            "--log-level", "warning", "--no-access-log")  # fmt: skip


def child_env(
    settings: Settings, base: Mapping[str, str], *, password: str, push_token: str
) -> dict[str, str]:
    """The children's environment: the user's own (PATH, SOC_* overrides) plus the demo's."""
    env = dict(base)
    env["SOC_AUTH_DEMO_PASSWORD"] = password
    env["SOC_SIMULATE_PUSH_TOKEN"] = push_token
    env.setdefault("SOC_NOTIFY_DASHBOARD_URL", dashboard_url(settings))
    # Provincial IT receives its province's emails (Hà Nội's go to the demo user hanoi-it).
    routes = Path(DEMO_ROUTES_FILE)
    if settings.notify_routes_file is None and routes.is_file():
        env.setdefault("SOC_NOTIFY_ROUTES_FILE", str(routes.resolve()))
    # Children must not each start a managed node: the supervisor already did, on these ports.
    env.setdefault("SOC_ES_HTTP_PORT", str(settings.es_http_port))
    return env


def dashboard_url(settings: Settings) -> str:
    return f"http://{settings.api_host}:{settings.api_port}/"


def child_specs(settings: Settings, options: DemoOptions, paths: DemoPaths, *,
                anomaly: bool = True) -> list[ChildSpec]:  # fmt: skip
    """In start order: mail sink, API, detector, worker, collector, then the traffic."""
    worker = _soc("demo", "worker") + (() if anomaly else ("--no-anomaly",))
    specs = [
        ChildSpec("smtp-sink", _soc("notify", "sink", "--maildir", str(paths.mail))),
        ChildSpec("api", api_argv(settings)),
        ChildSpec("detect", _soc("detect", "run")),
        ChildSpec("worker", worker),
        ChildSpec("collect", _soc("collect", "run", "--config", str(paths.collector_config))),
    ]
    if options.live:
        live = _soc("simulate", "live", "--out", str(paths.live_logs),
                    "--scenario", str(paths.scenarios), "--scale", f"{options.scale:g}",
                    "--fleet-port", str(options.fleet_port),
                    "--labels", str(paths.labels))  # fmt: skip
        specs.append(ChildSpec("simulate", live, essential=False))
    return specs
