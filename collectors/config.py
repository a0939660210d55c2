"""One YAML file per collector: its id, state directory, spool bounds, inventory and sources.

Validated into frozen models; any problem is a :class:`CollectorConfigError` naming file, line and
key. Example (every key but ``collector.id`` and ``sources`` has a default)::

    collector:
      id: hanoi-site-1
      state_dir: var/collectors/hanoi-site-1   # spool, offsets, status.json (relative: to the file)
      spool_max_mb: 512
      batch_size: 2000
      flush_interval: 1.0
      parse_workers: 1                         # processes parsing lines; 0 = in the collector
      metrics_port: 9464                       # Prometheus /metrics; 0 = off
    inventory_file: inventory.yaml             # or an inline `inventory:` with `systems:`
    sources:
      - {id: nginx, type: file, paths: ["/var/log/nginx/*.log"], format: access}
      - {id: syslog, type: syslog-udp, port: 5514}
      - {id: syslog-tcp, type: syslog-tcp, port: 5514}
      - {id: push, type: http, port: 8088}
      - id: probes
        type: probe
        interval: 60
        targets:
          - {name: hn-portal, url: "https://dichvucong.hanoi.gov.vn/", service: web-portal,
             province: "01", keyword: "Dịch vụ công"}

This module must not start anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from soc.errors import CollectorConfigError
from soc.inventory import Inventory, build, load_inventory
from soc.services import Service
from soc.yamlfile import Locator, load

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class CollectorSection(BaseModel):
    model_config = _FROZEN
    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    state_dir: Path | None = None
    spool_max_mb: float = Field(default=512, gt=0)
    batch_size: int = Field(default=2000, ge=1, le=50_000)
    flush_interval: float = Field(default=1.0, gt=0)
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    max_line_kb: int = Field(default=256, ge=1)
    retry_max: float = Field(default=30.0, gt=0)
    #: Child processes that parse and normalise (collectors/workers.py); 0: in the collector.
    parse_workers: int = Field(default=1, ge=0, le=32)


class _SourceBase(BaseModel):
    model_config = _FROZEN
    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")


class FileSourceSpec(_SourceBase):
    type: Literal["file"]
    paths: tuple[str, ...] = Field(min_length=1)
    format: Literal["access", "json", "syslog", "auto"] = "auto"
    poll_interval: float = Field(default=0.5, gt=0)
    #: Seconds a last line without newline may stay unchanged before it is shipped as it is
    #: (flag ``line_unterminated``); 0: only at rotation, removal, truncation or import.
    partial_settle: float = Field(default=10.0, ge=0)
    #: Archived logs: events keep their own ``@timestamp`` however old (flag ``imported``).
    archived: bool = False


class SyslogSourceSpec(_SourceBase):
    type: Literal["syslog-udp", "syslog-tcp"]
    host: str = "127.0.0.1"
    port: int = Field(default=5514, ge=0, le=65535)
    #: UDP: the socket's kernel receive buffer (a burst waits there while the collector reads).
    receive_buffer_mb: float = Field(default=16, gt=0, le=1024)
    #: TCP: the largest octet-counted frame; a larger count is a broken frame, dead-lettered.
    max_frame_kb: int = Field(default=256, ge=1, le=64 * 1024)


class HttpSourceSpec(_SourceBase):
    type: Literal["http"]
    host: str = "127.0.0.1"
    port: int = Field(default=8088, ge=0, le=65535)
    require_token: bool = True
    max_body_mb: float = Field(default=16, gt=0)


class ProbeTargetSpec(BaseModel):
    model_config = _FROZEN
    name: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://")
    service: Service
    province: str
    ward: str | None = None
    keyword: str | None = None
    expect_status: int = Field(default=200, ge=100, le=599)


class ProbeSourceSpec(_SourceBase):
    type: Literal["probe"]
    interval: float = Field(default=60, gt=0)
    timeout: float = Field(default=10, gt=0)
    ca_file: Path | None = None
    #: 0: every check is an event; else an up, unchanged target is reported this often only.
    report_every: float = Field(default=0, ge=0)
    targets: tuple[ProbeTargetSpec, ...] = Field(min_length=1)


SourceSpec = Annotated[
    FileSourceSpec | SyslogSourceSpec | HttpSourceSpec | ProbeSourceSpec,
    Field(discriminator="type"),
]


class CollectorFile(BaseModel):
    model_config = _FROZEN
    collector: CollectorSection
    inventory_file: Path | None = None
    inventory: dict[str, Any] | None = None
    sources: tuple[SourceSpec, ...] = Field(min_length=1)


class CollectorConfig:
    """A validated collector file with its inventory resolved; paths made absolute."""

    def __init__(self, spec: CollectorFile, inventory: Inventory, base: Path, path: Path) -> None:
        self.spec = spec
        self.inventory = inventory
        self.path = path
        state = spec.collector.state_dir or Path("var") / "collectors" / spec.collector.id
        self.state_dir = state if state.is_absolute() else base / state
        self.locator: Locator | None = None

    @property
    def id(self) -> str:
        return self.spec.collector.id


def load_config(path: Path) -> CollectorConfig:
    data, locator = load(path)
    try:
        spec = CollectorFile.model_validate(data or {})
    except ValidationError as exc:
        raise locator.error(exc) from None
    _unique_ids(spec, locator)
    base = path.resolve().parent
    if spec.inventory is not None and spec.inventory_file is not None:
        raise CollectorConfigError(
            "give inventory or inventory_file, not both",
            str(path),
            locator.line(("inventory_file",)),
        )
    if spec.inventory_file is not None:
        inv_path = spec.inventory_file
        inventory = load_inventory(inv_path if inv_path.is_absolute() else base / inv_path)
    else:
        inventory = build(spec.inventory or {}, locator, ("inventory",))
    _check_probe_localities(spec, locator)
    return CollectorConfig(spec, inventory, base, path)


def _unique_ids(spec: CollectorFile, locator: Locator) -> None:
    seen: set[str] = set()
    for n, source in enumerate(spec.sources):
        if source.id in seen:
            raise CollectorConfigError(
                f"sources.{n}.id: duplicate source id {source.id!r}",
                locator.path,
                locator.line(("sources", n, "id")),
            )
        seen.add(source.id)


def _check_probe_localities(spec: CollectorFile, locator: Locator) -> None:
    from soc.errors import LocalityError
    from soc.localities import catalogue

    for n, source in enumerate(spec.sources):
        if not isinstance(source, ProbeSourceSpec):
            continue
        for t, target in enumerate(source.targets):
            try:
                catalogue().locality(target.province, target.ward)
            except LocalityError as exc:
                where = ("sources", n, "targets", t, "ward" if target.ward else "province")
                raise CollectorConfigError(
                    f"{'.'.join(map(str, where))}: {exc}", locator.path, locator.line(where)
                ) from None
