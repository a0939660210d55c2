"""A local multi-node Elasticsearch cluster, for trying and testing failover on one machine.

Each node is a :class:`soc.es.launcher.LocalNode` of its own (own ports, data and logs under
``<base var_dir>/es-cluster/<node>``, the one installed server shared) that joins the others
through ``discovery.seed_hosts``. The nodes are launched together (a node answers health only
once a majority of master-eligible nodes has formed the cluster), then waited for. It is a
development and test tool; production clusters are run by their own tooling (docs/deploy.md).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time

from soc.config import Settings
from soc.errors import StartupFailedError
from soc.es import host
from soc.es.launcher import LocalNode, Membership


def _free_ports(host: str, n: int) -> list[int]:
    """``n`` distinct free ports: each socket stays bound until all are chosen, since a port
    just released may be handed out again (two nodes on one port: one answers for both)."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(n):
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
    return ports


class LocalCluster:
    """``size`` master-eligible data nodes on free ports of ``settings.es_host``."""

    def __init__(self, settings: Settings, size: int = 3, *, heap: str = "320m",
                 name: str = "soc-cluster") -> None:  # fmt: skip
        address = settings.es_host
        free = _free_ports(address, 2 * size)
        ports = list(zip(free[::2], free[1::2], strict=True))
        names = tuple(f"{name}-{n}" for n in range(1, size + 1))
        seeds = tuple(f"{address}:{transport}" for _, transport in ports)
        self.nodes: list[LocalNode] = []
        for node_name, (http, transport) in zip(names, ports, strict=True):
            own = settings.model_copy(update={
                "var_dir": settings.var_dir / "es-cluster" / node_name,
                "es_install_dir": settings.es_dist_dir, "es_http_port": http,
                "es_transport_port": transport, "es_heap": heap, "es_url": None,
            })  # fmt: skip
            self.nodes.append(LocalNode(own, Membership(name, node_name, seeds, names)))

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self) -> None:
        """Launch every node, then wait until each answers green or yellow."""
        launched = [(node, node.launch()) for node in self.nodes]
        try:
            for node, proc in launched:
                if proc is not None:
                    node.wait_healthy(proc)
        except StartupFailedError:
            self.stop()
            raise

    def pid(self, index: int) -> int | None:
        return self.nodes[index].pid()

    def kill(self, index: int) -> None:
        """SIGKILL one node (a crash, not a shutdown), and wait until it is gone."""
        node = self.nodes[index]
        pid = node.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        while host.alive(pid):
            time.sleep(0.05)
        node.pid_file.unlink(missing_ok=True)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop(timeout=30)
