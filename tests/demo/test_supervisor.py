"""The demo supervisor with real processes: restart after a crash, hold files, escalation from
Ctrl-C to SIGTERM to SIGKILL, grandchildren stopped with their parent, capped output logs."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from soc.demo import supervisor as sup_mod
from soc.demo.models import ChildSpec
from soc.demo.supervisor import Supervisor

PY = sys.executable
#: Prints, then sleeps; exits quietly on Ctrl-C.
POLITE = (
    "import time,sys\nprint('up', flush=True)\n"
    "try:\n    time.sleep(600)\nexcept KeyboardInterrupt:\n    sys.exit(0)"
)
#: Ignores Ctrl-C and SIGTERM: only SIGKILL stops it.
STUBBORN = (
    "import signal,time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('up', flush=True)\ntime.sleep(600)"
)
#: Starts a grandchild that would outlive it if only the child were signalled.
PARENT = (
    "import subprocess,sys,time\n"
    "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    "print(p.pid, flush=True)\ntime.sleep(600)"
)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def text(path: Path) -> str:
    """A log file's text; empty until the supervisor's output thread has created it."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def wait(check: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def make(tmp_path: Path, *specs: ChildSpec, stop_timeout: float = 1.0) -> Supervisor:
    return Supervisor(list(specs), logs=tmp_path / "logs", env=dict(os.environ),
                      stop_timeout=stop_timeout, pid_file=tmp_path / "pids.json",
                      hold_dir=tmp_path / "hold")  # fmt: skip


def test_a_crashed_child_is_restarted_unless_held(tmp_path: Path) -> None:
    sup = make(tmp_path, ChildSpec("polite", (PY, "-c", POLITE)))
    sup.start()
    try:
        first = sup.pids()["polite"]
        wait(lambda: "up" in text(sup.log_path("polite")))
        (tmp_path / "hold").mkdir()
        (tmp_path / "hold" / "polite").touch()
        os.kill(first, signal.SIGKILL)
        wait(lambda: any("exited with -9" in line for line in sup.check()))
        time.sleep(1.5)  # longer than the first restart delay: the hold keeps it down
        sup.check()
        assert sup.pids()["polite"] == first
        (tmp_path / "hold" / "polite").unlink()
        wait(lambda: bool(sup.check() or True) and sup.pids()["polite"] != first)
        assert alive(sup.pids()["polite"])
        assert sup.children[0].restarts == 1
        # Its output is appended to the same log; once it says "up" it handles Ctrl-C.
        wait(lambda: text(sup.log_path("polite")).count("up") == 2)
    finally:
        codes = sup.stop()
    assert codes == {"polite": 0}  # the Ctrl-C it got was enough
    assert not (tmp_path / "pids.json").exists()


def test_stop_escalates_and_takes_grandchildren_down(tmp_path: Path) -> None:
    sup = make(tmp_path, ChildSpec("stubborn", (PY, "-c", STUBBORN)),
               ChildSpec("parent", (PY, "-c", PARENT)))  # fmt: skip
    sup.start()
    wait(lambda: "up" in text(sup.log_path("stubborn")))
    wait(lambda: text(sup.log_path("parent")).strip().isdigit())
    grandchild = int(text(sup.log_path("parent")).strip())
    pids = sup.pids()
    began = time.monotonic()
    codes = sup.stop()
    assert codes["stubborn"] == -signal.SIGKILL  # Ctrl-C and SIGTERM ignored
    assert time.monotonic() - began >= 2.0  # it waited stop_timeout after each of them
    assert codes["parent"] == -signal.SIGINT
    wait(lambda: not alive(grandchild))
    assert not any(alive(pid) for pid in pids.values())


def test_output_logs_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sup_mod, "LOG_MAX_BYTES", 2000)
    chatty = "for i in range(500): print('line', i, flush=True)"
    sup = make(tmp_path, ChildSpec("chatty", (PY, "-c", chatty)))
    sup.start()
    wait(lambda: not sup.children[0].alive)
    sup.stop()
    log = sup.log_path("chatty")
    assert log.stat().st_size <= 2000
    assert log.with_suffix(".log.1").stat().st_size <= 2000
    assert "line 499" in log.read_text()
