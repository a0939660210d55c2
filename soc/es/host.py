"""Operating-system chores of the managed node: processes, ports, disk space, file ownership.

Kept apart from :mod:`soc.es.launcher` so the launcher reads as the node's life cycle. Nothing here
knows about Elasticsearch beyond the name it looks for in a process's command line.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path

from soc.errors import LauncherError, PortInUseError

MIN_FREE_BYTES = 1 << 30

#: Nodes this process launched: polling their Popen reaps them and records their exit, so a
#: node stopped by this process is not reported as a leaked child.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def adopt(proc: subprocess.Popen[bytes]) -> None:
    """Remember a node this process started (see ``_CHILDREN``)."""
    _CHILDREN[proc.pid] = proc


def alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone; reap it.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def is_our_process(pid: int, home: Path) -> bool:
    if not alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return True  # no /proc: trust the pid file
    return str(home).encode() in cmdline or b"elasticsearch" in cmdline


def require_free_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Elasticsearch binds with SO_REUSEADDR, so connections of a just-stopped node lingering
        # in TIME_WAIT do not block a restart; only a live listener does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise PortInUseError(
                f"port {host}:{port} is already in use by another process ({exc.strerror}); "
                "stop it, or choose other ports with SOC_ES_HTTP_PORT / SOC_ES_TRANSPORT_PORT"
            ) from exc


def require_free_space(path: Path) -> None:
    probe = path
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < MIN_FREE_BYTES:
        raise LauncherError(
            f"disk full: only {free // (1 << 20)} MiB free at {probe}; Elasticsearch needs at "
            f"least {MIN_FREE_BYTES >> 20} MiB. Free space or set SOC_VAR_DIR to another disk."
        )


def make_world_readable(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            p = Path(dirpath) / name
            p.chmod(p.stat().st_mode | 0o755)
        for name in filenames:
            p = Path(dirpath) / name
            p.chmod(p.stat().st_mode | 0o444)


def check_traversable(path: Path, user: pwd.struct_passwd) -> None:
    """Refuse early, with a fix, when the run user cannot reach ``path``."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if parent.stat().st_uid != user.pw_uid and not mode & 0o001:
            raise LauncherError(
                f"user {user.pw_name!r} (who runs Elasticsearch, since it refuses root) cannot "
                f"enter {parent}; `chmod o+x {parent}` or set SOC_VAR_DIR / SOC_ES_INSTALL_DIR "
                "to a directory outside it"
            )


def chown_tree(root: Path, user: pwd.struct_passwd) -> None:
    os.chown(root, user.pw_uid, user.pw_gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            os.chown(Path(dirpath) / name, user.pw_uid, user.pw_gid, follow_symlinks=False)
