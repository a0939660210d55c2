"""Where simulated records go through the real paths: log files, syslog, HTTP push.

Log files are laid out so that the inventory can tell service and locality from the path (access
logs carry neither), and ``manifest.json`` lists every file with its format, service and locality.
Syslog frames are RFC 5424 over UDP or TCP (octet counting); HTTP push POSTs NDJSON batches.
Everything shown to a sink is the same line a real system would write; this module must not
generate traffic.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from soc.errors import SimulationError
from soc.simulate.formats import to_line
from soc.simulate.models import AccessRecord, Record
from soc.simulate.profile import LOCAL


def relative_path(rec: Record) -> str:
    """Where a record's system writes its log, relative to the output directory."""
    province = rec.where.province.code
    if isinstance(rec, AccessRecord):
        if rec.where.ward is not None:
            return f"{province}/{rec.service.value}/{rec.where.ward.code}.access.log"
        return f"{province}/{rec.service.value}.access.log"
    return f"{province}/{rec.service.value}.app.log"


class FileSink:
    """Appends lines to per-system log files under ``root`` and keeps ``manifest.json``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._manifest: dict[str, dict[str, Any]] = self._load_manifest()
        self.lines = 0

    def _load_manifest(self) -> dict[str, dict[str, Any]]:
        path = self.root / "manifest.json"
        if not path.exists():
            return {}
        return {item["path"]: item for item in orjson.loads(path.read_bytes())["files"]}

    def write(self, batch: Iterable[Record]) -> None:
        grouped: dict[str, list[str]] = defaultdict(list)
        for rec in batch:
            rel = relative_path(rec)
            grouped[rel].append(to_line(rec))
            if rel not in self._manifest:
                self._manifest[rel] = {
                    "path": rel,
                    "format": "access" if isinstance(rec, AccessRecord) else "json",
                    "service": rec.service.value,
                    "province": rec.where.province.code,
                    "ward": rec.where.ward.code if rec.where.ward else None,
                }
        for rel, lines in grouped.items():
            target = self.root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("a", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
            self.lines += len(lines)
        self.flush_manifest()

    def flush_manifest(self) -> None:
        body = {"files": sorted(self._manifest.values(), key=lambda item: item["path"])}
        tmp = self.root / "manifest.json.tmp"
        tmp.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
        tmp.replace(self.root / "manifest.json")
        inventory = self.root / "inventory.yaml"
        if not inventory.exists():
            inventory.write_text(inventory_yaml(self.root), encoding="utf-8")


def inventory_yaml(root: Path) -> str:
    """A collectors inventory (soc/inventory.py format) attributing every file here.

    Rooted at the absolute directory: with a leading ``**`` the province-level pattern could also
    match a commune's file one directory deeper.
    """
    base = root.resolve().as_posix()
    patterns = [f"{base}/{{province}}/{{service}}/{{ward}}.access.log",
                f"{base}/{{province}}/{{service}}.access.log",
                f"{base}/{{province}}/{{service}}.app.log"]  # fmt: skip
    listed = "".join(f"      - {orjson.dumps(p).decode()}\n" for p in patterns)
    header = f"# Written by soc simulate: the files under {base}.\n"
    return f"{header}systems:\n  - id: simulated\n    paths:\n{listed}"


_FACILITY_LOCAL0 = 16


def syslog_frame(rec: Record) -> bytes:
    """An RFC 5424 message carrying the record's line (severity from its outcome)."""
    severity = 3 if getattr(rec, "failed", False) else 6
    stamp = rec.at.astimezone(LOCAL).isoformat(timespec="milliseconds")
    host = getattr(rec, "host", None) or f"{rec.service.value}-{rec.where.province.code}"
    app = rec.service.value
    return (
        f"<{_FACILITY_LOCAL0 * 8 + severity}>1 {stamp} {host} {app} - - - {to_line(rec)}".encode()
    )


class SyslogSink:
    """Sends each application record as one syslog message over UDP, or TCP with octet counting.

    Access lines are not sent: they name neither service nor locality, and the simulated hosts
    are not in any inventory; they travel as files or HTTP pushes, which carry both.
    """

    def __init__(self, host: str, port: int, *, tcp: bool = False) -> None:
        self.address = (host, port)
        self.tcp = tcp
        kind = socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM
        self._sock = socket.socket(socket.AF_INET, kind)
        if tcp:
            try:
                self._sock.connect(self.address)
            except OSError as exc:
                raise SimulationError(f"syslog {host}:{port}: cannot connect: {exc}") from None
        self.lines = 0

    def write(self, batch: Iterable[Record]) -> None:
        for rec in batch:
            if isinstance(rec, AccessRecord):
                continue
            frame = syslog_frame(rec)
            if self.tcp:
                self._sock.sendall(f"{len(frame)} ".encode() + frame)
            else:
                self._sock.sendto(frame, self.address)
            self.lines += 1

    def close(self) -> None:
        self._sock.close()


class HttpPushSink:
    """POSTs NDJSON batches to a collector's push endpoint (``collectors/sources/http.py``).

    Each line is the wrapper ``{"line", "service", "province", "ward"}`` (access lines carry
    neither service nor locality). A full collector spool answers 503 with ``Retry-After``: the
    batch is sent again, a few times, before giving up with an error.
    """

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 10.0,
                 chunk: int = 5000, attempts: int = 5,
                 sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
        if not url.startswith(("http://", "https://")):
            raise SimulationError(f"HTTP push URL {url!r} must start with http:// or https://")
        self.url, self.token, self.timeout = url, token, timeout
        self.chunk, self.attempts, self.sleep = chunk, attempts, sleep
        self.lines = 0

    def write(self, batch: Iterable[Record]) -> None:
        items = list(batch)
        for i in range(0, len(items), self.chunk):
            part = items[i : i + self.chunk]
            body = b"".join(
                orjson.dumps({
                    "line": to_line(rec), "service": rec.service.value,
                    "province": rec.where.province.code,
                    "ward": rec.where.ward.code if rec.where.ward else None,
                }) + b"\n"
                for rec in part
            )  # fmt: skip
            self._post(body)
            self.lines += len(part)

    def _post(self, body: bytes) -> None:
        headers = {"Content-Type": "application/x-ndjson"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        for attempt in range(1, self.attempts + 1):
            request = urllib.request.Request(self.url, data=body, method="POST", headers=headers)  # noqa: S310 - scheme checked in __init__
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    response.read()
                    return
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:300].decode("utf-8", "replace")
                if exc.code == 503 and attempt < self.attempts:
                    self.sleep(_retry_after(exc.headers.get("Retry-After")))
                    continue
                raise SimulationError(f"HTTP push to {self.url}: {exc.code} {detail}") from None
            except OSError as exc:
                raise SimulationError(f"HTTP push to {self.url} failed: {exc}") from None


def _retry_after(value: str | None) -> float:
    try:
        return min(max(float(value or 1), 0.0), 30.0)
    except ValueError:
        return 1.0
