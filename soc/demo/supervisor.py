"""The demo's process supervisor: starts the long-running children, restarts a crashed one, and
stops them all so that none outlives it.

Children run in their own session (a Ctrl-C in the terminal reaches the supervisor only, which
then stops them in order) and get ``PR_SET_PDEATHSIG`` so that even a supervisor killed with
SIGKILL takes them down. Stopping sends the Ctrl-C every soc command documents (SIGINT: the
detector releases its lease, the collector drains its spool), then SIGTERM, then SIGKILL, each
after ``stop_timeout``. A child's output goes to ``<name>.log`` capped at ``LOG_MAX_BYTES`` with
one rotated copy, so a week-long demo cannot fill the disk.

It must not know what the children do; it only starts, watches and stops them.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from soc.demo.models import ChildSpec

log = logging.getLogger(__name__)

LOG_MAX_BYTES = 8 * 2**20
_PR_SET_PDEATHSIG = 1
#: A child that crashes again sooner than this after a restart is restarted later and later.
RESTART_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    # A shell starts background jobs with SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: restore the default so our SIGINT means Ctrl-C to every child.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class Child:
    spec: ChildSpec
    proc: subprocess.Popen[bytes] | None = None
    pump: threading.Thread | None = None
    restarts: int = 0
    next_start: float = 0.0
    exits: list[int] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    """Start, watch and stop a set of children; see the module docstring."""

    def __init__(self, specs: list[ChildSpec], *, logs: Path, env: Mapping[str, str],
                 stop_timeout: float, pid_file: Path | None = None,
                 hold_dir: Path | None = None) -> None:  # fmt: skip
        self.children = [Child(spec) for spec in specs]
        self.logs = logs
        self.env = dict(env)
        self.stop_timeout = stop_timeout
        self.pid_file = pid_file
        #: A file ``<hold_dir>/<name>`` holds that child down: fault drills keep a killed child
        #: away for minutes, then delete the file to let the supervisor restart it.
        self.hold_dir = hold_dir
        logs.mkdir(parents=True, exist_ok=True)

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    # ------------------------------------------------------------------ start / watch
    def start(self) -> None:
        for child in self.children:
            self._spawn(child)
        self._write_pids()

    def _spawn(self, child: Child) -> None:
        env = {**self.env, **child.spec.env, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(  # argv is built by the demo, never from input
            child.spec.argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip
        child.proc = proc
        assert proc.stdout is not None
        target = self.log_path(child.spec.name)
        child.pump = threading.Thread(target=_pump, args=(proc.stdout, target),
                                      name=f"log-{child.spec.name}", daemon=True)  # fmt: skip
        child.pump.start()
        log.debug("started child=%s pid=%d", child.spec.name, proc.pid)

    def check(self) -> list[str]:
        """Restart children that exited; returns one line per event worth telling the user."""
        said = []
        now = time.monotonic()
        for child in self.children:
            if child.proc is None or child.alive:
                continue
            code = child.proc.returncode
            if child.next_start == 0.0:
                child.exits.append(code)
                delay = RESTART_BACKOFF[min(child.restarts, len(RESTART_BACKOFF) - 1)]
                child.next_start = now + delay
                said.append(f"{child.spec.name} exited with {code}; restarting in {delay:.0f} s "
                            f"(output: {self.log_path(child.spec.name)})")  # fmt: skip
            elif self._held(child.spec.name):
                child.next_start = max(child.next_start, now)
            elif now >= child.next_start:
                child.restarts += 1
                child.next_start = 0.0
                self._spawn(child)
                self._write_pids()
        return said

    def _held(self, name: str) -> bool:
        return self.hold_dir is not None and (self.hold_dir / name).exists()

    def pids(self) -> dict[str, int]:
        return {c.spec.name: c.proc.pid for c in self.children if c.proc is not None}

    def _write_pids(self) -> None:
        if self.pid_file is not None:
            self.pid_file.write_text(json.dumps({"supervisor": os.getpid(), **self.pids()}))

    # ------------------------------------------------------------------ stop
    def stop(self) -> dict[str, int | None]:
        """Stop every child (reverse start order); returns each one's exit code."""
        running = [c for c in reversed(self.children) if c.alive]
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            for child in running:
                if child.alive:
                    _signal(child, sig)
            deadline = time.monotonic() + (self.stop_timeout if sig != signal.SIGKILL else 10)
            while any(c.alive for c in running) and time.monotonic() < deadline:
                time.sleep(0.1)
            running = [c for c in running if c.alive]
            if not running:
                break
            names = ", ".join(c.spec.name for c in running)
            log.warning("still running after %s: %s", signal.Signals(sig).name, names)
        for child in self.children:
            if child.pump is not None:
                child.pump.join(timeout=2)
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)
        return {c.spec.name: (c.proc.returncode if c.proc else None) for c in self.children}


def _signal(child: Child, sig: int) -> None:
    assert child.proc is not None
    # The whole session: a child's own helpers (uvicorn workers, the JVM...) go too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.proc.pid, sig)


def _pump(stream: IO[bytes], path: Path) -> None:
    """Copy a child's output to its log file, rotating at ``LOG_MAX_BYTES`` (one old copy)."""
    out = path.open("ab")
    try:
        for line in iter(stream.readline, b""):
            if out.tell() + len(line) > LOG_MAX_BYTES:
                out.close()
                path.replace(path.with_suffix(".log.1"))
                out = path.open("ab")
            out.write(line)
            out.flush()
    finally:
        out.close()
        stream.close()
