"""Value objects of the main job: where its files live, what each child process is, what it did.

Plain data only; nothing here starts a process or touches Elasticsearch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from soc.config import Settings


@dataclass(frozen=True)
class DemoPaths:
    """Every file the demo writes, under ``<var_dir>/demo`` (the mailbox is the sink's own)."""

    root: Path
    mail: Path
    #: The demo users' password; ``soc auth`` reads it too, so the settings name it.
    password: Path

    @classmethod
    def of(cls, settings: Settings) -> DemoPaths:
        root, mail = settings.var_dir / "demo", settings.var_dir / "mail"
        return cls(root=root, mail=mail, password=settings.demo_password_file)

    @property
    def collector_config(self) -> Path:
        return self.root / "collector.yaml"

    @property
    def scenarios(self) -> Path:
        return self.root / "scenarios.yaml"

    @property
    def push_token(self) -> Path:
        return self.root / "push-token"

    @property
    def live_logs(self) -> Path:
        return self.root / "live"

    @property
    def process_logs(self) -> Path:
        return self.root / "logs"

    @property
    def collector_state(self) -> Path:
        return self.root / "collector"

    @property
    def labels(self) -> Path:
        return self.root / "live-labels.jsonl"

    @property
    def backfill_record(self) -> Path:
        return self.root / "backfill.json"

    @property
    def pids(self) -> Path:
        return self.root / "children.json"

    @property
    def hold(self) -> Path:
        return self.root / "hold"


@dataclass(frozen=True)
class DemoOptions:
    """What one run of the demo does; defaults come from the settings (``SOC_DEMO_*``)."""

    backfill_days: float
    scale: float
    scenario_every: float
    train: bool = True
    live: bool = True
    fleet_port: int = 18300
    push_port: int = 18088
    syslog_port: int = 15514
    #: Each endpoint is checked this often; a healthy, unchanged one is reported every minute.
    probe_interval: float = 10.0
    probe_report_every: float = 60.0
    #: Seconds from the live start to the first scenario (the others follow every scenario_every).
    first_scenario: float = 60.0
    #: Stop on its own after this many seconds (0: until Ctrl-C/SIGTERM). Tests use it.
    duration: float = 0.0

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> DemoOptions:
        base = cls(
            backfill_days=settings.demo_backfill_days,
            scale=settings.demo_scale,
            scenario_every=settings.demo_scenario_every,
        )
        return _replace(base, overrides)


def _replace(options: DemoOptions, overrides: dict[str, object]) -> DemoOptions:
    from dataclasses import replace

    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(options, **given)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ChildSpec:
    """One long-running process of the demo: a name, its command line, extra environment."""

    name: str
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    #: Children the demo can live without say so instead of stopping everything when they die.
    essential: bool = True


@dataclass(frozen=True)
class Credential:
    user: str
    role: str
    scope: str
