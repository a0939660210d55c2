"""Heartbeats of the long-running processes, for container health checks (``soc health``).

``soc detect`` and ``soc pipeline`` write ``<var_dir>/heartbeat/<process>-<host>.json`` from
their scheduler, every tick, whether they are active or standing by; ``soc health <process>``
exits 0 while this host's file is fresh. A hung scheduler stops beating and the container turns
unhealthy. It says nothing about the cluster (``/api/v1/health`` and ``soc es`` do that) and
must not be used for coordination between instances (the lease in ``soc-state`` is).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path


def path_of(var_dir: Path, process: str) -> Path:
    return var_dir / "heartbeat" / f"{process}-{socket.gethostname()}.json"


def beat(var_dir: Path, process: str, **facts: object) -> None:
    """Record that ``process`` is alive now (atomic rename: a reader never sees half a file)."""
    path = path_of(var_dir, process)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "at": time.time(), **facts}), "utf-8")
    tmp.replace(path)


def age(var_dir: Path, process: str) -> float | None:
    """Seconds since this host's ``process`` last beat, or None when it never did."""
    try:
        body = json.loads(path_of(var_dir, process).read_text("utf-8"))
        return max(0.0, time.time() - float(body["at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
