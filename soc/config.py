"""The one settings object of soc.

Every tunable of every process is a field of :class:`Settings`, read from the environment with the
``SOC_`` prefix (``SOC_ES_URL``, ``SOC_INDEX_PREFIX`` ...). Every field has a safe default for the
embedded setup (a managed Elasticsearch node on 127.0.0.1, data under ``var/``). Secrets are
``SecretStr`` and never printed: :meth:`Settings.masked` is what ``soc config show`` prints.

No other module reads ``os.environ``; they receive a ``Settings``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from soc.errors import ConfigError

#: Root of the checkout when soc runs from source; the default home of ``var/``.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

_PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")
_HEAP_RE = re.compile(r"^[1-9][0-9]*[mg]$")


class Settings(BaseSettings):
    """Effective configuration of soc; see the README's configuration table."""

    model_config = SettingsConfigDict(env_prefix="SOC_", extra="ignore", frozen=True)

    # --- where soc keeps its local files (managed node, spools, models, logs) ---
    var_dir: Path = Field(default=PROJECT_ROOT / "var", description="Local state directory.")

    # --- Elasticsearch: an existing cluster ---
    es_url: str | None = Field(
        default=None,
        description="URL(s) of an existing Elasticsearch cluster, comma-separated (several nodes: "
        "requests fail over to the others); when set, no local node is managed.",
    )
    es_sniff: bool = Field(
        default=False,
        description="Discover the cluster's other HTTP nodes (at start and when a node fails); "
        "only where the nodes' published addresses are reachable from soc.",
    )
    es_username: str | None = None
    es_password: SecretStr | None = None
    es_api_key: SecretStr | None = None
    es_ca_file: Path | None = Field(default=None, description="CA bundle to verify the cluster.")
    es_request_timeout: float = Field(default=30.0, gt=0)
    es_connections_per_node: int = Field(
        default=64,
        ge=1,
        le=1000,
        description="Connections the client keeps to each node, per process, opened as needed; "
        "a request finding them all busy waits in the client (keep it >= SOC_API_THREADS).",
    )
    es_wait_timeout: float = Field(
        default=30.0, gt=0, description="How long commands wait for the cluster to be healthy."
    )

    # --- Elasticsearch: the managed local node ---
    es_version: str = Field(default="9.5.0", description="Version of the managed local node.")
    es_host: str = "127.0.0.1"
    es_http_port: int = Field(default=9250, ge=1, le=65535)
    es_transport_port: int = Field(default=9350, ge=1, le=65535)
    es_heap: str = Field(default="512m", description="JVM heap of the managed node (-Xms/-Xmx).")
    es_java_home: Path | None = Field(
        default=None,
        description="JDK for the managed node (21+ with module jdk.jlink); found if unset.",
    )
    java_home: Path | None = Field(
        default=None, validation_alias=AliasChoices("JAVA_HOME", "SOC_JAVA_HOME")
    )
    es_run_user: str = Field(
        default="soc-es", description="Unprivileged user that runs the node when soc runs as root."
    )
    es_start_timeout: float = Field(default=120.0, gt=0)

    es_install_dir: Path | None = Field(
        default=None,
        description="Where the Elasticsearch server is unpacked (default: <var_dir>/es/dist).",
    )

    # --- index naming ---
    index_prefix: str = Field(
        default="soc", description="Prefix of every index and template soc owns."
    )

    index_shards: int = Field(
        default=1, ge=1, le=64, description="Primary shards of the fixed indices (alerts ...)."
    )
    index_event_shards: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Primary shards of each daily event index (by volume: docs/deploy.md).",
    )
    index_replicas: int | None = Field(
        default=None,
        ge=0,
        description="Replicas per index; default 0 on the managed node, 1 on a cluster.",
    )

    # --- incident emails (soc.notify); defaults point at the local demo sink `soc notify sink` ---
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=8025, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_tls: bool = Field(default=False, description="Implicit TLS (SMTPS) instead of STARTTLS.")
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout: float = Field(default=10.0, gt=0)
    notify_from: str = "SOC <soc@soc.local>"
    notify_national_soc: str = "national-soc@soc.local"
    notify_dashboard_url: str = "http://127.0.0.1:8000"
    notify_routes_file: Path | None = Field(default=None, description="Email routes YAML.")
    notify_template_dir: Path | None = Field(default=None, description="Template overrides.")
    notify_rate_limit: int = Field(default=6, ge=1, description="Emails per recipient per window.")
    notify_rate_window: float = Field(default=3600.0, gt=0, description="Seconds.")
    notify_max_attempts: int = Field(default=10, ge=1)
    notify_retry_base: float = Field(default=30.0, gt=0, description="First retry delay, seconds.")
    notify_retry_max: float = Field(default=3600.0, gt=0)
    notify_ack_sla: float = Field(
        default=1800.0, gt=0, description="Seconds to acknowledge before an incident escalates."
    )
    notify_webhooks_file: Path | None = Field(
        default=None, description="Outgoing webhooks YAML (docs/notify.md#webhooks)."
    )
    notify_webhook_secrets: dict[str, SecretStr] = Field(
        default_factory=dict, description='HMAC keys by webhook name, JSON: {"name": "key"}.'
    )
    notify_webhook_timeout: float = Field(default=10.0, gt=0, description="Seconds per POST.")

    # --- incidents, API, auth, status board (soc.incidents, soc.app, soc.auth, soc.status) ---
    environment: Literal["development", "production"] = Field(
        default="development",
        description="production refuses demo users and placeholder secrets.",
    )
    incident_recovery_quiet: float = Field(
        default=300.0,
        gt=0,
        description="Seconds with no alert of a cause (and at least two of its detection "
        "windows) after which its episode is over: the next alert opens a new incident.",
    )
    incident_recovery_probe: float = Field(
        default=20.0,
        ge=0,
        description="Seconds of successful health probes (two results at least) after the "
        "last alert that end an episode at once.",
    )
    incident_parent_threshold: int = Field(
        default=3, ge=2, description="Communes of one province, one cause, that make a parent."
    )
    incident_resolve_sla: float = Field(
        default=14400.0, gt=0, description="Seconds to resolve an incident (ack: notify_ack_sla)."
    )
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_threads: int = Field(
        default=40,
        ge=1,
        le=1000,
        description="Threads per API worker for the synchronous routes (FastAPI's thread pool); "
        "requests beyond them wait in order.",
    )
    api_gc_freeze: bool = Field(
        default=True,
        description="Exclude the objects loaded at an API worker's start from the garbage "
        "collector (gc.freeze), which then scans only what requests create.",
    )
    auth_users_file: Path | None = Field(default=None, description="Users and roles YAML.")
    auth_demo_password: SecretStr | None = Field(
        default=None, description="Creates demo users with this password (development only)."
    )
    auth_session_ttl: float = Field(default=28800.0, gt=0, description="Login session, seconds.")
    auth_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="Seconds a checked token or session is remembered per process (0: off); "
        "a revocation reaches other processes within it.",
    )
    auth_cookie_secure: bool = Field(
        default=False, description="Send the session cookie over HTTPS only."
    )
    auth_login_account_attempts: int = Field(
        default=5, ge=1, description="Failed sign-ins to one account before each waits."
    )
    auth_login_account_max_delay: float = Field(
        default=60.0, gt=0, description="Longest wait of an account (a victim's worst case), s."
    )
    auth_login_address_attempts: int = Field(
        default=20, ge=1, description="Failed sign-ins from one address before each waits."
    )
    auth_login_address_max_delay: float = Field(
        default=900.0, gt=0, description="Longest wait of a source address, seconds."
    )
    auth_login_forget: float = Field(
        default=900.0, gt=0, description="Seconds without a failure before the count restarts."
    )
    status_probe_window: float = Field(
        default=900.0, gt=0, description="Seconds of probe results the status board looks at."
    )
    dashboards_poll_seconds: float = Field(
        default=10.0, gt=0, description="Seconds between live refreshes of the console alert queue."
    )

    # --- Sigma detection (detectors.sigma, `soc detect`, `soc rules`) ---
    rules_dir: Path | None = Field(default=None, description="Sigma rules (default: ./rules).")
    detect_tick: float = Field(default=5.0, gt=0, description="Seconds between scheduler ticks.")
    detect_early: bool = Field(
        default=True, description="Also search open windows each tick and alert before they close."
    )
    detect_settle: float = Field(
        default=5.0, ge=0, description="Seconds a window waits after its end for ingest/refresh."
    )
    detect_lookback: float = Field(
        default=86400.0, gt=0, description="Oldest @timestamp (seconds before a window) searched."
    )
    detect_correlation_lookback: float = Field(
        default=120.0, ge=0, description="Seconds of past correlation slots re-checked each tick."
    )
    detect_max_catchup: int = Field(default=60, ge=1, description="Windows per rule per tick.")
    detect_lease_ttl: float = Field(default=60.0, gt=0, description="Seconds a lease is held.")
    detect_msearch_chunk: int = Field(default=200, ge=1, description="Searches per _msearch.")

    # --- anomaly model (detectors/anomaly) ---
    anomaly_bucket_minutes: int = Field(
        default=5,
        ge=1,
        le=60,
        description="Step of the anomaly model, minutes: every step judges the step itself and "
        "the long window ending at it (detectors/anomaly/windows.py).",
    )
    anomaly_long_window_minutes: int = Field(
        default=15,
        ge=1,
        le=60,
        description="Longer window judged at every step (a multiple of the step): modest "
        "failure-ratio rises need its events to be significant.",
    )
    anomaly_stream: bool = Field(
        default=True,
        description="Run the live streaming detector (detectors/anomaly/live.py): event volumes "
        "and failure counts in 5-minute buckets, beside the 15-minute model's volume, "
        "failure-ratio and latency tests (which run either way).",
    )
    anomaly_stream_bucket_minutes: int = Field(
        default=5, ge=1, le=5, description="Bucket of the live streaming detector, minutes."
    )
    anomaly_stream_lateness_seconds: float = Field(
        default=20.0, ge=0, le=50, description="Ingest delay awaited before a live bucket is read."
    )
    anomaly_stream_warmup_days: float = Field(
        default=2.0, ge=0, description="History the live banks learn from on a first start."
    )
    anomaly_stream_warmup_tick_seconds: float = Field(
        default=10.0,
        ge=0,
        description="Longest a tick spends warming up live banks on a first start (at least one "
        "chunk of one province's history a tick; the rest resumes on the next ticks).",
    )
    anomaly_training_days: int = Field(default=7, ge=1, description="History the model learns.")
    anomaly_lateness_seconds: float = Field(
        default=20.0, ge=0, description="Ingest delay awaited before a step is scored."
    )
    anomaly_alpha: float = Field(
        default=1e-7, gt=0, lt=0.01, description="Tail probability below which a bucket deviates."
    )
    anomaly_min_events: int = Field(
        default=10,
        ge=1,
        description="Fewest events in a bucket before its latency or a failure ratio is judged "
        "(15-minute model), or before the live streaming detector calls its count a surge.",
    )
    anomaly_min_failures: int = Field(
        default=5,
        ge=1,
        description="Fewest failures of a kind (failed, 5xx, 401/403, OTP) in a bucket before "
        "the 15-minute ratio test or the live streaming detector calls them a surge.",
    )
    anomaly_silence_lookback_minutes: int = Field(
        default=1440,
        ge=15,
        description="Longest silence judged: how far back silence detection looks for the last "
        "event (a quiet series needs hours of silence before it is improbable).",
    )
    anomaly_retrain_hours: int = Field(
        default=24, ge=1, description="Age at which the scheduled job retrains the model (drift)."
    )

    # --- simulator (soc/simulate) ---
    simulate_push_token: SecretStr | None = Field(
        default=None, description="Bearer token `soc simulate live --http-push` sends."
    )

    # --- the main job `soc demo` (soc/demo): supervisor of every process, bounded footprint ---
    demo_backfill_days: float = Field(
        default=7.0, ge=0, description="Days of simulated history the demo backfills (0: none)."
    )
    demo_scale: float = Field(
        default=1.0, gt=0, le=100, description="Traffic volume of the demo (1.0 ≈ 280k/weekday)."
    )
    demo_scenario_every: float = Field(
        default=240.0, ge=10, description="Seconds between two scenarios of the live demo."
    )
    demo_pipeline_tick: float = Field(
        default=2.0, gt=0, description="Seconds between grouping/notify rounds of `soc pipeline`."
    )
    demo_stop_timeout: float = Field(
        default=15.0, gt=0, description="Seconds per stop signal (Ctrl-C, SIGTERM) before the next."
    )
    demo_spool_max_mb: float = Field(
        default=256.0, gt=0, description="Bound of the demo collector's disk spool."
    )

    # --- logging ---
    log_level: str = "INFO"

    @field_validator(
        "var_dir", "es_ca_file", "es_java_home", "java_home", "es_install_dir",
        "notify_routes_file", "notify_template_dir", "notify_webhooks_file", "auth_users_file",
        "rules_dir",
    )  # fmt: skip
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        """A relative path is taken from the working directory at start-up, once: the node's
        Maven fetch and its process run elsewhere, so ``SOC_VAR_DIR=var/x`` must not move."""
        return None if value is None else value.expanduser().absolute()

    @field_validator("index_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not _PREFIX_RE.match(value):
            raise ValueError(
                "must be lowercase letters, digits, '-' or '_', starting with a letter or digit"
            )
        return value

    @field_validator("es_heap")
    @classmethod
    def _check_heap(cls, value: str) -> str:
        if not _HEAP_RE.match(value):
            raise ValueError("must look like 512m or 2g")
        return value

    @field_validator("es_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        urls = [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        for n, url in enumerate(urls, start=1):
            if not url.startswith(("http://", "https://")):
                # The value itself is not shown: a URL may carry credentials.
                raise ValueError(f"URL {n} of {len(urls)} must start with http:// or https://")
        return ",".join(urls)

    @property
    def managed_es(self) -> bool:
        """True when soc runs its own local node rather than using ``es_url``."""
        return self.es_url is None

    @property
    def es_dist_dir(self) -> Path:
        return self.es_install_dir or self.var_dir / "es" / "dist"

    @property
    def es_node_dir(self) -> Path:
        return self.var_dir / "es" / "node"

    @property
    def demo_password_file(self) -> Path:
        """The demo users' password: ``soc demo`` writes it, ``soc auth`` reads it (development)."""
        return self.var_dir / "demo" / "demo-password"

    @property
    def replicas(self) -> int:
        if self.index_replicas is not None:
            return self.index_replicas
        return 0 if self.managed_es else 1

    @property
    def cookie_secure(self) -> bool:
        """Whether session cookies carry ``Secure``: always in production, whatever
        ``SOC_AUTH_COOKIE_SECURE`` says (the API login and the console login alike)."""
        return self.auth_cookie_secure or self.environment == "production"

    @property
    def es_urls(self) -> list[str]:
        """The cluster's node URLs: those of ``SOC_ES_URL``, or the managed node's."""
        if self.es_url is None:
            return [f"http://{self.es_host}:{self.es_http_port}"]
        return self.es_url.split(",")

    @property
    def effective_es_url(self) -> str:
        """The URL(s) to show or hand to a child process (comma-separated when several)."""
        return ",".join(self.es_urls)

    def masked(self) -> dict[str, Any]:
        """The settings as plain values, secrets replaced by ``'**********'``."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                shown[name] = "**********"
            elif isinstance(value, Path):
                shown[name] = str(value)
            else:
                shown[name] = value
        shown["effective_es_url"] = self.effective_es_url
        return shown


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return load_settings()


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, turning a validation failure into a :class:`ConfigError`.

    The error names the environment variable, the value's problem and never the value itself
    (it may be a secret).
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(part) for part in err["loc"]) or "?"
            problems.append(f"SOC_{field.upper()}: {err['msg']}")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from None
