"""docker-compose.yml runs: no Docker engine here, so each service's own command, environment and
health check are read from the file and run on this machine against the real test node.

What is mapped, and only that: container paths to a temporary folder (the ``soc-var`` volume,
``/etc/soc`` with the example collector config, ``/run/secrets``), container host names and
ports to loopback and free ports, ``soc`` to this checkout's console script, an index prefix of
the test's own. The mail catcher (mailpit) is stood in for by ``soc notify sink``, the cluster by
the test node (its health check is the compose file's own curl command, against that node).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from soc.config import PROJECT_ROOT
from tests.conftest import free_port

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
SOC = str(Path(sys.executable).with_name("soc"))
PASSWORD = "violet kettle under the bridge"
LONG_RUNNING = ("soc-api", "soc-detect", "soc-pipeline", "soc-collect")
_VAR = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")


def _interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR:?message}`` / ``${VAR:-default}`` and ``$$``, as compose does it."""

    def one(match: re.Match[str]) -> str:
        name, kind, arg = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        if kind == "?":
            raise AssertionError(f"compose needs {name}: {arg}")
        return arg or ""

    return _VAR.sub(one, text).replace("$$", "$")


class Mapping:
    """Container names, paths and ports → this machine."""

    def __init__(self, root: Path, es_url: str) -> None:
        self.root = root
        self.es_url = es_url
        self.api_port, self.smtp_port = free_port(), free_port()
        self.paths = {
            "/var/lib/soc": root / "var",
            "/etc/soc": root / "etc-soc",
            "/run/secrets": root / "secrets",
            "/var/log/soc-input": root / "log-input",
        }
        for path in self.paths.values():
            path.mkdir(parents=True, exist_ok=True)

    def text(self, value: str) -> str:
        value = value.replace("http://elasticsearch:9200", self.es_url)
        value = value.replace("localhost:9200", self.es_url.removeprefix("http://"))
        for inside, outside in self.paths.items():
            value = value.replace(inside, str(outside))
        return value

    def argv(self, argv: list[str]) -> list[str]:
        mapped = [self.text(a) for a in argv]
        mapped = [str(self.api_port) if a == "8000" else a for a in mapped]
        return [SOC if a == "soc" else a for a in mapped]

    def shell(self, command: str) -> str:
        return re.sub(r"(^|&& )soc ", rf"\g<1>{SOC} ", self.text(command))

    def env(self, environment: dict[str, Any], prefix: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SOC_")}
        env.update({k: self.text(str(v)) for k, v in environment.items()})
        env.update(SOC_API_PORT=str(self.api_port), SOC_SMTP_HOST="127.0.0.1",
                   SOC_SMTP_PORT=str(self.smtp_port), SOC_INDEX_PREFIX=prefix,
                   SOC_LOG_LEVEL="WARNING")  # fmt: skip
        return env

    def collector_config(self) -> None:
        """The example config, its container paths and ports moved to this machine."""
        source = PROJECT_ROOT / "collectors" / "examples"
        for item in source.iterdir():
            text = self.text(item.read_text(encoding="utf-8"))
            for port in ("5514", "8088", "9464"):
                text = text.replace(f"port: {port}", f"port: {free_port()}")
            (self.paths["/etc/soc"] / item.name).write_text(text, encoding="utf-8")


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip


def _healthcheck(spec: dict[str, Any], mapping: Mapping) -> list[str]:
    test = spec["healthcheck"]["test"]
    if test[0] == "CMD-SHELL":
        return ["sh", "-c", mapping.shell(test[1])]
    assert test[0] == "CMD"
    return mapping.argv(test[1:])


@pytest.fixture
def compose(es_url: str, prefix: str, tmp_path: Path) -> tuple[dict[str, Any], Mapping]:
    env = {"ELASTIC_PASSWORD": "example-only"}
    spec = yaml.safe_load(_interpolate(COMPOSE.read_text(encoding="utf-8"), env))
    mapping = Mapping(tmp_path, es_url)
    return spec, mapping


def test_every_service_of_the_compose_file_starts_and_becomes_healthy(
    compose: tuple[dict[str, Any], Mapping], prefix: str
) -> None:
    spec, mapping = compose
    services = spec["services"]
    # The file's own promises first: right commands, files that exist, a check per service.
    assert services["soc-detect"]["command"][:3] == ["soc", "detect", "run"]
    assert (PROJECT_ROOT / "collectors" / "examples" / "collector.yaml").is_file()
    for name in [*LONG_RUNNING, "elasticsearch", "mailcatcher"]:
        assert "healthcheck" in services[name], name
    # The cluster: the compose file's curl check against the test node.
    es_check = _run(_healthcheck(services["elasticsearch"], mapping), dict(os.environ))
    assert es_check.returncode == 0, es_check.stderr

    secret = mapping.paths["/run/secrets"] / "soc_admin_password"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    mapping.collector_config()
    setup = services["soc-setup"]
    setup_env = mapping.env(setup["environment"], prefix)
    first = _run(["sh", "-c", mapping.shell(setup["command"][2])], setup_env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "admin admin created" in first.stdout
    again = _run(["sh", "-c", mapping.shell(setup["command"][2])], setup_env)
    assert "admin admin unchanged" in again.stdout

    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = mapping.root / "logs"
    logs.mkdir()
    try:
        sink_env = mapping.env({}, prefix)
        procs["mailcatcher"] = _start([SOC, "notify", "sink", "--port", str(mapping.smtp_port),
                                       "--maildir", str(mapping.root / "mail")], sink_env,
                                      logs)  # fmt: skip
        for name in LONG_RUNNING:
            argv, env = services[name]["command"], services[name]["environment"]
            procs[name] = _start(mapping.argv(argv), mapping.env(env, prefix), logs, name)
        pending = {name: _healthcheck(services[name], mapping) for name in LONG_RUNNING}
        healthy_after = _wait_healthy(pending, procs, mapping, prefix, logs)
        assert set(healthy_after) == set(LONG_RUNNING)
        _login_as_admin(mapping)
    finally:
        for proc in procs.values():
            _stop(proc)
    for name, proc in procs.items():
        assert proc.returncode in (0, -signal.SIGTERM, 130), (name, _tail(logs, name))


def _start(argv: list[str], env: dict[str, str], logs: Path,
           name: str = "mailcatcher") -> subprocess.Popen[bytes]:  # fmt: skip
    with (logs / f"{name}.log").open("wb") as out:  # the child keeps its own descriptor
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip


def _wait_healthy(pending: dict[str, list[str]], procs: dict[str, subprocess.Popen[bytes]],
                  mapping: Mapping, prefix: str, logs: Path) -> dict[str, float]:  # fmt: skip
    started, healthy = time.monotonic(), {}
    env = mapping.env({"SOC_VAR_DIR": str(mapping.paths["/var/lib/soc"])}, prefix)
    while pending and time.monotonic() - started < 150:
        for name, argv in list(pending.items()):
            assert procs[name].poll() is None, f"{name} exited: {_tail(logs, name)}"
            if _run(argv, env).returncode == 0:
                healthy[name] = time.monotonic() - started
                del pending[name]
        time.sleep(1)
    assert not pending, {name: _tail(logs, name) for name in pending}
    return healthy


def _login_as_admin(mapping: Mapping) -> None:
    body = json.dumps({"username": "admin", "password": PASSWORD}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{mapping.api_port}/api/v1/auth/login", data=body,
        headers={"Content-Type": "application/json"}, method="POST",
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - loopback
        assert resp.status == 200


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _tail(logs: Path, name: str) -> str:
    path = logs / f"{name}.log"
    return path.read_text(errors="replace")[-2000:] if path.exists() else "(no log)"


def test_the_compose_file_refuses_to_start_without_its_secrets() -> None:
    with pytest.raises(AssertionError, match="ELASTIC_PASSWORD"):
        _interpolate(COMPOSE.read_text(encoding="utf-8"), {})
    assert shutil.which("sh") is not None
