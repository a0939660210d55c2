"""What the kernel knows about a UDP socket: its receive buffer, and the datagrams it dropped.

A burst of datagrams waits in the socket's receive buffer while the collector reads; when that is
full the kernel drops the next ones and counts them per socket (the ``drops`` column of
``/proc/net/udp``, the count ``SO_RXQ_OVFL`` would attach to later datagrams). The collector reads
that counter so that those datagrams are reported as ``dropped`` instead of vanishing. Linux only:
elsewhere the counter is unavailable, which is logged once. This module must not read datagrams.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

log = logging.getLogger(__name__)

_TABLES = (Path("/proc/net/udp"), Path("/proc/net/udp6"))
#: Columns of a ``/proc/net/udp`` row: the socket's inode and its drop counter.
_INODE, _DROPS = 9, 12


def receive_buffer(sock: socket.socket, wanted: int) -> int:
    """Ask for a ``wanted``-byte receive buffer; the size the kernel granted.

    ``SO_RCVBUFFORCE`` goes past ``net.core.rmem_max`` when the process may (CAP_NET_ADMIN);
    otherwise ``SO_RCVBUF`` is capped there, which is logged with the setting to raise."""
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    try:
        if force is None:
            raise PermissionError
        sock.setsockopt(socket.SOL_SOCKET, force, wanted)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, wanted)
    granted = int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
    if granted < wanted:  # Linux reports twice what it was asked for (its bookkeeping)
        log.info(
            "UDP receive buffer: asked %d bytes, the kernel granted %d (raise the sysctl "
            "net.core.rmem_max to allow more)",
            wanted,
            granted,
        )
    return granted


class KernelDrops:
    """The kernel's drop counter of one UDP socket, read as increments."""

    def __init__(self, sock: socket.socket) -> None:
        self.inode = str(os.fstat(sock.fileno()).st_ino)
        self.available = True
        self.last = self._read() or 0

    def grew(self) -> int:
        """Datagrams dropped since the last call (0 where the counter cannot be read)."""
        now = self._read()
        if now is None:
            return 0
        grown, self.last = max(0, now - self.last), now
        return grown

    def _read(self) -> int | None:
        if not self.available:
            return None
        for table in _TABLES:
            try:
                rows = table.read_text("ascii").splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                cols = row.split()
                if len(cols) > _DROPS and cols[_INODE] == self.inode:
                    return int(cols[_DROPS])
        log.warning(
            "the kernel's drop counter of UDP socket inode %s is not readable here (no "
            "/proc/net/udp): datagrams the kernel drops cannot be counted",
            self.inode,
        )
        self.available = False
        return None
