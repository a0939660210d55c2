"""The managed local Elasticsearch node used by the demo, the tests and development.

Elasticsearch publishes a runnable server on Maven Central, the *integ-test-zip*
(``org.elasticsearch.distribution.integ-test-zip:elasticsearch:<version>:zip``). :class:`LocalNode`
fetches it with ``mvn`` (Maven's local repository caches it, and the unpacked copy is kept, so a
second install downloads nothing), finds a suitable Java (:mod:`soc.es.java`), and runs one
single-node cluster on 127.0.0.1 with security off, its data and logs under ``<var_dir>/es/node``.
Elasticsearch refuses to run as root, so when soc runs as root the node runs as an unprivileged
system user (``SOC_ES_RUN_USER``), created on first use.

This module manages a *local* node only. When ``SOC_ES_URL`` is set soc uses that cluster and
nothing here is called. It never talks to the cluster beyond the health endpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from soc.config import Settings
from soc.errors import LauncherError, StartupFailedError
from soc.es import host
from soc.es.java import JavaRuntime, find_java

log = logging.getLogger(__name__)

MAVEN_GROUP = "org.elasticsearch.distribution.integ-test-zip"
MAVEN_ARTIFACT = "elasticsearch"
#: The old dependency plugin that ships with Debian's Maven cannot copy a typed artifact by
#: coordinates; this one can.
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
_LOG_TAIL_LINES = 40


@dataclass(frozen=True)
class NodeStatus:
    """What ``soc es status`` reports."""

    running: bool
    pid: int | None
    url: str
    health: str | None
    version: str
    installed: bool
    home: Path
    data_dir: Path
    log_dir: Path

    def lines(self) -> list[str]:
        state = f"running (pid {self.pid})" if self.running else "stopped"
        return [
            f"state:     {state}",
            f"url:       {self.url}",
            f"health:    {self.health or '-'}",
            f"version:   {self.version} ({'installed' if self.installed else 'not installed'})",
            f"home:      {self.home}",
            f"data:      {self.data_dir}",
            f"logs:      {self.log_dir}",
        ]


@dataclass(frozen=True)
class Membership:
    """This node's place in a local multi-node cluster (:mod:`soc.es.cluster`); without one the
    node is a single-node cluster."""

    cluster: str
    node: str
    seed_hosts: tuple[str, ...]  # every node's transport address, host:port
    masters: tuple[str, ...]  # node names that form the first cluster


class LocalNode:
    """Install, start, stop, inspect and reset the managed single-node cluster."""

    def __init__(self, settings: Settings, membership: Membership | None = None) -> None:
        self.settings = settings
        self.membership = membership
        self.version = settings.es_version
        self.dist_dir = settings.es_dist_dir
        self.node_dir = settings.es_node_dir
        self.home = self.dist_dir / f"elasticsearch-{self.version}"
        self.conf_dir = self.node_dir / "config"
        self.data_dir = self.node_dir / "data"
        self.log_dir = self.node_dir / "logs"
        self.tmp_dir = self.node_dir / "tmp"
        self.pid_file = self.node_dir / "es.pid"
        self.console_log = self.log_dir / "console.log"
        self.url = f"http://{settings.es_host}:{settings.es_http_port}"

    # ------------------------------------------------------------------ install
    @property
    def installed(self) -> bool:
        return (self.home / ".soc-installed").is_file()

    def install(self) -> Path:
        """Fetch and unpack the distribution unless it already is; return its home."""
        if self.installed:
            return self.home
        self.dist_dir.mkdir(parents=True, exist_ok=True)
        host.require_free_space(self.dist_dir)
        archive = self._fetch_archive()
        staging = self.dist_dir / f".unpack-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(staging)
        except (zipfile.BadZipFile, OSError) as exc:
            shutil.rmtree(staging, ignore_errors=True)
            archive.unlink(missing_ok=True)
            raise LauncherError(f"cannot unpack {archive}: {exc}; run the install again") from exc
        unpacked = staging / f"elasticsearch-{self.version}"
        for script in (unpacked / "bin").iterdir():
            script.chmod(0o755)  # zipfile drops the executable bits
        shutil.rmtree(self.home, ignore_errors=True)
        unpacked.rename(self.home)
        shutil.rmtree(staging, ignore_errors=True)
        host.make_world_readable(self.home)
        (self.home / ".soc-installed").write_text(self.version + "\n", encoding="utf-8")
        log.info("installed Elasticsearch %s in %s", self.version, self.home)
        return self.home

    def _fetch_archive(self) -> Path:
        archive = self.dist_dir / f"elasticsearch-{self.version}.zip"
        if archive.is_file() and zipfile.is_zipfile(archive):
            return archive
        mvn = shutil.which("mvn")
        if mvn is None:
            raise LauncherError(
                "Maven (`mvn`) is needed to fetch Elasticsearch and is not on PATH; "
                "install it (Debian: apt-get install maven) or set SOC_ES_URL to a running cluster."
            )
        coords = f"{MAVEN_GROUP}:{MAVEN_ARTIFACT}:{self.version}:zip"
        cmd = [
            mvn, "-B", "-q", f"{DEPENDENCY_PLUGIN}:copy",
            f"-Dartifact={coords}",
            f"-DoutputDirectory={self.dist_dir}",
            "-Dmdep.overWriteReleases=true",
        ]  # fmt: skip
        log.info("fetching %s with Maven", coords)
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=900, check=False, cwd=self.dist_dir
            )
        except subprocess.TimeoutExpired as exc:
            raise LauncherError(f"Maven did not fetch {coords} within 15 minutes") from exc
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        if done.returncode == 0 and not archive.is_file():
            raise LauncherError(f"Maven fetched {coords} but {archive} is not there\n{tail}")
        if done.returncode != 0:
            raise LauncherError(
                f"Maven could not fetch {coords} (exit {done.returncode}); is Maven Central "
                f"reachable?\n{tail}"
            )
        return archive

    # ------------------------------------------------------------------ state
    def pid(self) -> int | None:
        """PID of our running node, or None (a stale pid file is removed)."""
        try:
            pid = int(self.pid_file.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return None
        if host.is_our_process(pid, self.home):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def health(self, timeout: float = 2.0) -> str | None:
        """The cluster status colour, or None if nothing healthy answers."""
        url = f"{self.url}/_cluster/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (http on loopback)
                body = json.loads(resp.read())
        except (OSError, ValueError):
            return None
        status = body.get("status")
        return status if isinstance(status, str) else None

    def status(self) -> NodeStatus:
        pid = self.pid()
        return NodeStatus(
            running=pid is not None,
            pid=pid,
            url=self.url,
            health=self.health() if pid is not None else None,
            version=self.version,
            installed=self.installed,
            home=self.home,
            data_dir=self.data_dir,
            log_dir=self.log_dir,
        )

    # ------------------------------------------------------------------ start
    def start(self) -> bool:
        """Start the node and wait until it is healthy.

        Returns False (and starts nothing) when our node already runs. Raises
        :class:`PortInUseError`, :class:`soc.errors.JavaNotFoundError` or
        :class:`StartupFailedError` (with the log tail) instead of hanging.
        """
        proc = self.launch()
        if proc is None:
            return False
        self._wait_healthy(proc)
        log.info("Elasticsearch %s is up at %s (pid %s)", self.version, self.url, proc.pid)
        return True

    def launch(self) -> subprocess.Popen[bytes] | None:
        """Start the process without waiting for health (a cluster's nodes are launched
        together, then waited for); None when our node already runs."""
        if self.pid() is not None:
            return None
        self.install()
        java = find_java(
            self.version, explicit=self.settings.es_java_home, java_home=self.settings.java_home
        )
        for port in (self.settings.es_http_port, self.settings.es_transport_port):
            host.require_free_port(self.settings.es_host, port)
        host.require_free_space(self.node_dir.parent if self.node_dir.exists() else self.dist_dir)
        run_user = self._run_user()
        self._write_config(java)
        if run_user is not None:
            host.check_traversable(self.home, run_user)
            host.check_traversable(java.home, run_user)
            host.check_traversable(self.node_dir.parent, run_user)
            host.chown_tree(self.node_dir, run_user)
        self.console_log.unlink(missing_ok=True)
        proc = self._spawn(java, run_user)
        host.adopt(proc)
        self.pid_file.write_text(f"{proc.pid}\n", encoding="utf-8")
        return proc

    def _run_user(self) -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        name = self.settings.es_run_user
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        done = subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise LauncherError(
                f"Elasticsearch refuses to run as root and user {name!r} could not be created: "
                f"{done.stderr.strip()}"
            )
        return pwd.getpwnam(name)

    def _write_config(self, java: JavaRuntime) -> None:
        for d in (self.conf_dir, self.data_dir, self.log_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)
        source = self.home / "config"
        for item in source.iterdir():
            target = self.conf_dir / item.name
            if item.is_dir():
                shutil.copytree(item, target, dirs_exist_ok=True)
            elif item.name not in ("elasticsearch.yml", "jvm.options"):
                shutil.copy2(item, target)
        s = self.settings
        yml = {
            "cluster.name": "soc-local",
            "node.name": "soc-local-1",
            "discovery.type": "single-node",
            "network.host": s.es_host,
            "http.port": s.es_http_port,
            "transport.port": s.es_transport_port,
            "path.data": str(self.data_dir),
            "path.logs": str(self.log_dir),
            "xpack.security.enabled": False,
            "action.destructive_requires_name": True,
            # A development node on a shared disk: absolute watermarks, so a big but busy disk
            # does not turn every index read-only.
            "cluster.routing.allocation.disk.watermark.low": "2gb",
            "cluster.routing.allocation.disk.watermark.high": "1gb",
            "cluster.routing.allocation.disk.watermark.flood_stage": "512mb",
        }
        if self.membership is not None:
            m = self.membership
            del yml["discovery.type"]
            yml.update({"cluster.name": m.cluster, "node.name": m.node,
                        "discovery.seed_hosts": list(m.seed_hosts),
                        "cluster.initial_master_nodes": list(m.masters)})  # fmt: skip
        lines = [f"{key}: {json.dumps(value)}" for key, value in yml.items()]
        (self.conf_dir / "elasticsearch.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        options = (source / "jvm.options").read_text(encoding="utf-8").splitlines()
        if "jdk.incubator.vector" not in java.modules:
            options = [o for o in options if "jdk.incubator.vector" not in o]
        (self.conf_dir / "jvm.options").write_text("\n".join(options) + "\n", encoding="utf-8")
        heap = s.es_heap
        (self.conf_dir / "jvm.options.d").mkdir(exist_ok=True)
        (self.conf_dir / "jvm.options.d" / "soc-heap.options").write_text(
            f"-Xms{heap}\n-Xmx{heap}\n", encoding="utf-8"
        )

    def _spawn(
        self, java: JavaRuntime, run_user: pwd.struct_passwd | None
    ) -> subprocess.Popen[bytes]:
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "ES_JAVA_HOME": str(java.home),
            "ES_PATH_CONF": str(self.conf_dir),
            "ES_TMPDIR": str(self.tmp_dir),
        }
        with self.console_log.open("ab") as out:
            if run_user is not None:
                os.chown(self.console_log, run_user.pw_uid, run_user.pw_gid)
            return subprocess.Popen(
                [str(self.home / "bin" / "elasticsearch")],
                env=env,
                cwd=self.node_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=run_user.pw_uid if run_user else None,
                group=run_user.pw_gid if run_user else None,
                extra_groups=[] if run_user else None,
            )

    def wait_healthy(self, proc: subprocess.Popen[bytes]) -> None:
        """Wait for a launched node to answer health (see :meth:`launch`)."""
        self._wait_healthy(proc)

    def _wait_healthy(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self.settings.es_start_timeout
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None:
                self.pid_file.unlink(missing_ok=True)
                raise StartupFailedError(f"the process exited with code {code}", *self._log_tail())
            if self.health(timeout=1.0) in ("green", "yellow"):
                return
            time.sleep(0.5)
        self._terminate(proc.pid)
        raise StartupFailedError(
            f"not healthy after {self.settings.es_start_timeout:.0f}s (stopped it again)",
            *self._log_tail(),
        )

    def _log_tail(self) -> tuple[str, str]:
        """The most telling log and its last lines: the server log if it has any, else console."""
        cluster = self.membership.cluster if self.membership else "soc-local"
        server_log = self.log_dir / f"{cluster}.log"
        path = (
            server_log if server_log.is_file() and server_log.stat().st_size else self.console_log
        )
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return str(path), "(no log written)"
        return str(path), "\n".join(lines[-_LOG_TAIL_LINES:]) or "(empty log)"

    # ------------------------------------------------------------------ stop / reset
    def stop(self, timeout: float = 60.0) -> bool:
        """Stop our node; False if it was not running."""
        pid = self.pid()
        if pid is None:
            return False
        self._terminate(pid, timeout)
        return True

    def _terminate(self, pid: int, timeout: float = 60.0) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and host.alive(pid):
            time.sleep(0.2)
        if host.alive(pid):
            log.warning(
                "Elasticsearch (pid %s) ignored SIGTERM for %.0fs; killing it", pid, timeout
            )
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            while host.alive(pid):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)

    def reset(self) -> None:
        """Stop the node and delete its data and logs (the installed distribution stays)."""
        self.stop()
        for d in (self.data_dir, self.log_dir, self.tmp_dir):
            shutil.rmtree(d, ignore_errors=True)
