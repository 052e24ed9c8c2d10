"""Settings shared by the API and the workers, read from `JOBS_*` environment variables and `.env`."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import (
    Field,
    FilePath,
    HttpUrl,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    RedisDsn,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from arq_jobs._netguard import Allowlist

ENV_PREFIX = "JOBS_"
QUEUE_PATTERN = r"^[A-Za-z0-9_.-]+$"

# TLS options a rediss:// URL's query may carry (as may JOBS_REDIS_SSL_* settings), besides `db`
REDIS_TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")
REDIS_URL_OPTIONS = ("db", *REDIS_TLS_OPTIONS)

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
Port = Annotated[int, Field(ge=1, le=65535)]


class Settings(BaseSettings):
    """Runtime configuration; every field can be set as `JOBS_<FIELD>` (e.g. `JOBS_REDIS_URL`)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,  # an error never prints a password, token or key it was given
    )

    redis_url: RedisDsn = Field(
        default=RedisDsn("redis://127.0.0.1:6379/0"), description="Redis the API and workers share."
    )
    redis_timeout_s: PositiveFloat = Field(
        default=5.0, description="Connect and socket timeout for Redis calls."
    )
    redis_sentinels: Annotated[tuple[tuple[str, int], ...], NoDecode] = Field(
        default=(),
        description="Comma-separated `host:port` of Redis Sentinels (port 26379 when left out): API, "
        "workers and CLI then ask them for the primary of `redis_sentinel_master` and follow a failover; "
        "JOBS_REDIS_URL still gives the database, user, password and TLS (its host and port are unused).",
    )
    redis_sentinel_master: str | None = Field(
        default=None, min_length=1, description="Name of the primary the Sentinels watch (e.g. mymaster)."
    )
    redis_sentinel_password: SecretStr | None = Field(
        default=None, description="Password of the Sentinels themselves (their `requirepass`), if any."
    )
    redis_ssl_ca_certs: FilePath | None = Field(
        default=None,
        description="CA bundle that signs Redis' TLS certificate (rediss:// only; wins over the URL's "
        "`ssl_ca_certs`).",
    )
    redis_ssl_certfile: FilePath | None = Field(
        default=None, description="Client certificate for Redis TLS (wins over the URL's `ssl_certfile`)."
    )
    redis_ssl_keyfile: FilePath | None = Field(
        default=None, description="Key of the client certificate (wins over the URL's `ssl_keyfile`)."
    )
    redis_ssl_cert_reqs: Literal["required", "optional", "none"] | None = Field(
        default=None,
        description="Whether Redis' certificate must verify: required (the default), optional or none "
        "(wins over the URL's `ssl_cert_reqs`).",
    )
    redis_min_replicas_ack: Annotated[int, Field(ge=0)] = Field(
        default=0,
        description="Replicas that must have a new job (Redis WAIT) before the API accepts it (202); "
        "when fewer confirm in time the API answers 503 redis_unavailable. 0 turns it off.",
    )
    redis_replicas_ack_timeout_ms: PositiveInt = Field(
        default=1000,
        description="How long an enqueue waits for `redis_min_replicas_ack` replicas (below "
        "`redis_timeout_s`).",
    )
    key_prefix: str = Field(
        default="jobs",
        min_length=1,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Prefix of every Redis key this project writes besides ARQ's own.",
    )
    queue_name: str = Field(
        default="default",
        min_length=1,
        pattern=QUEUE_PATTERN,
        description="Queue that tasks without a queue of their own go to, and that "
        "`arq workers.WorkerSettings` serves; one of `queues`.",
    )
    queues: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("high", "default", "low"),
        description="Comma-separated names of the queues jobs may go to; each is served by its own "
        "worker pool (`arq workers.<Name>WorkerSettings`, e.g. HighWorkerSettings).",
    )
    worker_concurrency: PositiveInt = Field(
        default=100, description="Jobs one worker process runs at once (ARQ max_jobs)."
    )
    queue_concurrency: Annotated[dict[str, PositiveInt], NoDecode] = Field(
        default_factory=dict,
        description="Per-queue worker concurrency as `queue=jobs` pairs, e.g. `high=20,low=10`; "
        "a queue not named here uses `worker_concurrency`.",
    )
    poll_delay_s: PositiveFloat = Field(
        default=0.05, description="How long a worker sleeps between polls of an empty queue."
    )
    job_timeout_s: PositiveFloat = Field(
        default=300.0, description="Default hard time limit of a job; a task may set its own."
    )
    job_expires_s: PositiveInt = Field(
        default=86_400,
        description="How long a job may wait past its run time for a worker before it fails as expired.",
    )
    result_ttl_s: PositiveInt = Field(
        default=86_400,
        description="How long results and job records are kept after a job ends (both outcomes, unless "
        "`keep_succeeded_s` / `keep_failed_s` say otherwise).",
    )
    keep_succeeded_s: PositiveInt | None = Field(
        default=None,
        description="How long a succeeded job (record, result, listing entries) is kept after it ends; "
        "unset: `result_ttl_s`.",
    )
    keep_failed_s: PositiveInt | None = Field(
        default=None,
        description="How long a failed or cancelled job is kept after it ends; unset: `result_ttl_s` "
        "(dead letters follow `dead_letter_ttl_s`).",
    )
    keep_succeeded_count: PositiveInt | None = Field(
        default=None,
        description="At most this many succeeded jobs are kept per queue, the oldest deleted first "
        "(BullMQ's removeOnComplete count); unset: no limit.",
    )
    keep_failed_count: PositiveInt | None = Field(
        default=None,
        description="At most this many failed jobs, and this many cancelled jobs, are kept per queue; "
        "unset: no limit.",
    )
    events_keep_s: NonNegativeInt = Field(
        default=60,
        description="How long an ended job's event stream is kept; after it, GET /jobs/{id}/events "
        "gives the job's last event alone, read off its record.",
    )
    stats_minutes_ttl_s: NonNegativeInt = Field(
        default=2 * 86_400,
        description="How long per-minute statistics (GET /stats, the dashboard's charts) are kept; 0 "
        "turns them off.",
    )
    stats_hours_ttl_s: NonNegativeInt = Field(
        default=90 * 86_400,
        description="How long per-hour statistics are kept (windows of 24 h and more read them); 0 turns "
        "them off.",
    )
    stats_sample_s: Annotated[float, Field(ge=1, le=60)] = Field(
        default=5.0,
        description="How often each queue's depth is sampled for the statistics (by one worker of the "
        "queue per tick, however many serve it).",
    )
    health_check_interval_s: PositiveInt = Field(
        default=5, description="How often a worker writes its health-check key."
    )
    shutdown_grace_s: PositiveInt = Field(
        default=8,
        description="On SIGTERM, how long a worker lets running jobs finish before putting them back "
        "(keep it below the supervisor's stop timeout: Docker's is 10 s).",
    )
    lease_s: Annotated[float, Field(ge=2, le=300)] = Field(
        default=10.0,
        description="A running job's lease, renewed every second by its worker: when the worker dies "
        "the job runs again on another worker within this time (plus one poll).",
    )
    outage_hold_s: PositiveFloat = Field(
        default=60.0,
        description="While Redis is unreachable, how long a worker keeps retrying the write that records "
        "a finished attempt before giving it up (the job then runs again once its lease runs out).",
    )
    idempotency_ttl_s: PositiveInt = Field(
        default=86_400, description="How long an Idempotency-Key maps to the job it created."
    )
    dead_letter_ttl_s: PositiveInt = Field(
        default=30 * 86_400, description="How long dead letters are kept unless deleted first."
    )
    task_packages: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("workers.tasks",),
        description="Comma-separated packages whose modules define the tasks (API and workers must agree).",
    )
    http_timeout_s: PositiveFloat = Field(
        default=10.0, description="Timeout of the workers' shared HTTP client (webhooks)."
    )
    api_host: str = Field(default="127.0.0.1", description="Interface the API listens on.")
    api_port: Port = Field(default=8000, description="Port the API listens on.")
    api_workers: PositiveInt = Field(
        default=1,
        description="API processes `serve()` (`python -m app`) runs, sharing the port (uvicorn's workers); "
        "more than one needs the app as an import string.",
    )
    log_level: LogLevel = Field(default="INFO", description="Log level of API and workers.")
    access_log: bool = Field(
        default=True,
        description="Log each HTTP request (uvicorn's access log); about a tenth of the API's CPU time "
        "per enqueue.",
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto",
        description="Log line format: JSON, human-readable console, or auto (console on a terminal).",
    )
    heartbeat_s: Annotated[float, Field(ge=0.5, le=60)] = Field(
        default=2.0,
        description="How often a worker refreshes its entry in the worker registry; it counts as dead "
        "after 3 missed beats.",
    )
    worker_history_s: PositiveInt = Field(
        default=3600, description="How long a stopped or dead worker stays listed (as stale) by GET /workers."
    )
    version_guard: bool = Field(
        default=True,
        description="Refuse a job (409 task_not_served) when live workers serve its queue and none of "
        "them has its task, or all run it with another input schema; false queues it anyway.",
    )
    events_maxlen: PositiveInt = Field(
        default=1000, description="Events kept per job for GET /jobs/{id}/events (oldest trimmed first)."
    )
    sse_ping_s: PositiveFloat = Field(
        default=15.0, description="How often an idle event stream sends a `: ping` comment."
    )
    worker_metrics_port: Annotated[int, Field(ge=0, le=65535)] = Field(
        default=0,
        description="Port on which each worker serves Prometheus /metrics; 0 turns it off.",
    )
    tracing_enabled: bool = Field(
        default=False, description="Export OpenTelemetry traces (OTLP over HTTP) from API and workers."
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP traces endpoint, e.g. http://collector:4318/v1/traces (default: the "
        "OTEL_EXPORTER_OTLP_* environment variables, else http://localhost:4318/v1/traces).",
    )
    auth: Literal["keys", "off"] = Field(
        default="keys",
        description="`keys`: every API route but the health checks needs an API key (`arq-jobs keys "
        "create`) or JOBS_ADMIN_TOKEN; `off`: no authentication, refused unless the API listens on a "
        "loopback address (`make run` uses it).",
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description="Bootstrap admin key (at least 32 characters): works as a key with the `admin` scope, "
        "as `Authorization: Bearer <token>` or, for the dashboard, HTTP Basic with the token as password.",
    )
    public_url: HttpUrl | None = Field(
        default=None,
        description="The API's public base URL (e.g. https://jobs.example.com); status and workflow URLs "
        "start with it instead of the request's Host.",
    )
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        default=("localhost", "127.0.0.1", "::1"),
        description="Comma-separated host names the API answers to (the `Host` header, without port; "
        "`*.example.com` for subdomains, `*` for any); others get 400. JOBS_PUBLIC_URL's host is added.",
    )
    webhook_allowed_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Comma-separated exceptions to the webhook address guard: host names, `host:port` or "
        "CIDRs (e.g. `127.0.0.1/32,hooks.internal:8443`) that send_webhook may reach although they "
        "resolve to a loopback, private or otherwise internal address.",
    )
    webhook_max_response_bytes: PositiveInt = Field(
        default=64 * 1024, description="How much of a webhook's answer is read (the rest is dropped)."
    )
    max_request_bytes: PositiveInt = Field(
        default=1024 * 1024,
        description="Largest request body the API reads (413 payload_too_large); a task may set a lower "
        "`max_input_bytes`.",
    )
    max_batch_request_bytes: PositiveInt = Field(
        default=4 * 1024 * 1024,
        description="Largest request body of a batch enqueue (`POST /jobs/{task}/batch`, 413 "
        "payload_too_large); each input in it is held to what one job of its task may have (422).",
    )
    max_workflow_steps: PositiveInt = Field(
        default=1000, description="Most steps one workflow may have, callbacks included (422 beyond)."
    )
    max_schedule_ahead_s: PositiveInt = Field(
        default=365 * 86_400, description="How far ahead `delay` or `run_at` may schedule a job (422 beyond)."
    )
    queue_max_pending: Annotated[dict[str, PositiveInt], NoDecode] = Field(
        default_factory=dict,
        description="Back-pressure per queue as `queue=jobs` pairs, e.g. `default=100000`: an enqueue to "
        "a queue already holding that many jobs answers 429 queue_full; a queue not named has no limit.",
    )
    sse_max_streams: PositiveInt = Field(
        default=1000,
        description="Event streams (GET /jobs/{id}/events) one API process serves at once; more get 503.",
    )
    redis_max_connections: PositiveInt = Field(
        default=100,
        description="Most Redis connections one API process opens; a request that finds all in use waits "
        "up to JOBS_REDIS_TIMEOUT_S for one, then gets 503.",
    )
    secrets_key: SecretStr | None = Field(
        default=None,
        description="Comma-separated Fernet keys (`arq-jobs secret-key` prints a new one): task input "
        "fields marked Secret are stored encrypted with the first; any of them decrypts (rotation).",
    )
    dashboard_enabled: bool = Field(default=True, description="Serve the operator dashboard.")
    dashboard_prefix: str = Field(
        default="/dashboard",
        pattern=r"^/[A-Za-z0-9_./-]*[A-Za-z0-9_-]$",
        description="Path the dashboard is mounted under.",
    )
    dashboard_read_only: bool = Field(
        default=False, description="Dashboard shows everything but hides and refuses (403) every action."
    )
    dashboard_refresh_s: Annotated[float, Field(ge=0, le=3600)] = Field(
        default=5.0, description="Dashboard live refresh period; 0 turns live refresh off."
    )
    schedules_enabled: bool = Field(
        default=True,
        description="Whether this worker process fires the tasks' schedules (each tick runs once "
        "however many workers fire it).",
    )
    disabled_schedules: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Comma-separated names of schedules turned off everywhere (GET /schedules shows "
        "them disabled).",
    )

    @field_validator("admin_token")
    @classmethod
    def long_admin_token(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and len(token.get_secret_value()) < 32:
            raise ValueError(
                "must be at least 32 characters (make one with: python -c "
                "'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return token

    @field_validator("task_packages", mode="before")
    @classmethod
    def split_packages(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("task_packages")
    @classmethod
    def some_packages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one package")
        return value

    @field_validator("queues", "disabled_schedules", "allowed_hosts", "webhook_allowed_hosts", mode="before")
    @classmethod
    def split_queues(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("webhook_allowed_hosts")
    @classmethod
    def valid_webhook_exceptions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        Allowlist.parse(value)  # a ValueError names the bad entry; the workers parse it again to use it
        return value

    @field_validator("queues")
    @classmethod
    def valid_queues(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one queue")
        seen: dict[str, str] = {}
        for name in value:
            if not re.fullmatch(QUEUE_PATTERN, name):
                raise ValueError(f"{name!r} is not a valid queue name (use letters, digits, '_', '.', '-')")
            if name in seen.values():
                raise ValueError(f"{name!r} is listed more than once")
            pool = pool_class_name(name)
            if pool in seen:
                raise ValueError(f"{seen[pool]!r} and {name!r} would share the worker settings name {pool}")
            seen[pool] = name
        return value

    @field_validator("queue_concurrency", "queue_max_pending", mode="before")
    @classmethod
    def parse_queue_numbers(cls, value: object) -> object:
        """`high=20,low=10` → {"high": 20, "low": 10}."""
        if not isinstance(value, str):
            return value
        found: dict[str, int] = {}
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            name, equals, jobs = (part.strip() for part in item.partition("="))
            if not (equals and name):
                raise ValueError(f"expected queue=jobs pairs such as high=20,low=10, got {item!r}")
            if name in found:
                raise ValueError(f"queue {name!r} is given more than once")
            if not (re.fullmatch("[0-9]+", jobs) and int(jobs) > 0):
                raise ValueError(f"{item!r}: the number must be a whole number above 0")
            found[name] = int(jobs)
        return found

    @field_validator("redis_url", mode="before")
    @classmethod
    def not_cluster(cls, value: object) -> object:
        if isinstance(value, str) and "cluster" in value.partition("://")[0].lower():
            raise ValueError("Redis Cluster is not supported (use one primary, with Sentinel for failover)")
        return value

    @field_validator("redis_url")
    @classmethod
    def known_url_options(cls, url: RedisDsn) -> RedisDsn:
        query = dict(url.query_params())
        unknown = sorted(set(query) - set(REDIS_URL_OPTIONS))
        if unknown:
            raise ValueError(
                f"unsupported option {', '.join(unknown)} (the URL takes {', '.join(REDIS_URL_OPTIONS)})"
            )
        if not re.fullmatch("[0-9]+", query.get("db") or (url.path or "/0").strip("/") or "0"):
            raise ValueError("the database (the URL's path or ?db=) must be a number")
        if query.get("ssl_cert_reqs", "required") not in ("required", "optional", "none"):
            raise ValueError("ssl_cert_reqs must be required, optional or none")
        return url

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def split_sentinels(cls, value: object) -> object:
        """`host1:26379,host2` → (("host1", 26379), ("host2", 26379))."""
        if not isinstance(value, str):
            return value
        found = []
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            host, colon, port = item.rpartition(":")
            host, port = (host, port) if colon else (item, "26379")
            host = host.removeprefix("[").removesuffix("]")  # [::1]:26379
            if not (host and re.fullmatch("[0-9]{1,5}", port) and 0 < int(port) < 65536):
                raise ValueError(f"expected host:port pairs such as redis-1:26379,redis-2, got {item!r}")
            found.append((host, int(port)))
        return tuple(found)

    @model_validator(mode="after")
    def redis_connection_is_complete(self) -> Settings:
        if bool(self.redis_sentinels) != bool(self.redis_sentinel_master):
            raise PydanticCustomError(
                "sentinel_incomplete",
                f"{ENV_PREFIX}REDIS_SENTINELS and {ENV_PREFIX}REDIS_SENTINEL_MASTER go together: set both "
                "(the Sentinels' host:port list and the name of the primary they watch) or neither",
            )
        url = f"{ENV_PREFIX}REDIS_URL"
        tls = [
            f"{ENV_PREFIX}REDIS_{name.upper()}"
            for name in REDIS_TLS_OPTIONS
            if getattr(self, f"redis_{name}")
        ]
        tls += [f"{url}'s {name}" for name, _ in self.redis_url.query_params() if name in REDIS_TLS_OPTIONS]
        if self.redis_url.scheme != "rediss" and tls:
            raise PydanticCustomError(
                "tls_without_rediss", f"{', '.join(tls)}: TLS options, but {url} is not rediss://"
            )
        if self.redis_min_replicas_ack and self.redis_replicas_ack_timeout_ms >= self.redis_timeout_s * 1000:
            raise PydanticCustomError(
                "replicas_ack_timeout_too_long",
                f"{ENV_PREFIX}REDIS_REPLICAS_ACK_TIMEOUT_MS ({self.redis_replicas_ack_timeout_ms}) must be "
                f"below {ENV_PREFIX}REDIS_TIMEOUT_S ({self.redis_timeout_s:g} s): the wait for replicas "
                "happens within one Redis call",
            )
        return self

    @model_validator(mode="after")
    def queues_are_configured(self) -> Settings:
        configured = f"{ENV_PREFIX}QUEUES ({', '.join(self.queues)})"
        problems = []
        if self.queue_name not in self.queues:
            problems.append(f"{ENV_PREFIX}QUEUE_NAME: {self.queue_name!r} is not one of {configured}")
        for setting, named in (
            ("QUEUE_CONCURRENCY", self.queue_concurrency),
            ("QUEUE_MAX_PENDING", self.queue_max_pending),
        ):
            unknown = [name for name in named if name not in self.queues]
            if unknown:
                names = ", ".join(repr(name) for name in unknown)
                verb = "is not one of" if len(unknown) == 1 else "are not among"
                problems.append(f"{ENV_PREFIX}{setting}: {names} {verb} {configured}")
        if problems:
            raise PydanticCustomError("queue_not_configured", "; ".join(problems))
        return self

    def with_task_packages(self, packages: Sequence[str] | None) -> Settings:
        """These settings with `packages` as the task packages (unchanged when None)."""
        if packages is None:
            return self
        return self.model_copy(update={"task_packages": self.some_packages(tuple(packages))})

    def concurrency_for(self, queue: str) -> int:
        """How many jobs at once one worker process of `queue`'s pool runs."""
        return self.queue_concurrency.get(queue, self.worker_concurrency)

    def keep_s(self, succeeded: bool) -> int:
        """How long a job that ended is kept: a succeeded one, or a failed or cancelled one."""
        keep = self.keep_succeeded_s if succeeded else self.keep_failed_s
        return self.result_ttl_s if keep is None else keep

    def keep_count(self, succeeded: bool) -> int | None:
        """How many ended jobs of one queue and outcome are kept (None: no limit)."""
        return self.keep_succeeded_count if succeeded else self.keep_failed_count

    @property
    def longest_keep_s(self) -> int:
        """The longest any ended job is kept."""
        return max(self.keep_s(True), self.keep_s(False))

    @field_validator("key_prefix")
    @classmethod
    def not_arq_namespace(cls, prefix: str) -> str:
        if prefix == "arq" or prefix.startswith("arq:"):
            raise ValueError("must not be 'arq' or start with 'arq:' (ARQ's own keys live there)")
        return prefix

    @field_validator("secrets_key")
    @classmethod
    def fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        """Each comma-separated part a Fernet key (32 url-safe base64 bytes); the message names a
        key by its place, never by its value."""
        if value is None:
            return None
        parts = [part.strip() for part in value.get_secret_value().split(",") if part.strip()]
        if not parts:
            raise ValueError("give at least one key (`arq-jobs secret-key` prints a new one)")
        for n, part in enumerate(parts, start=1):
            try:
                valid = len(base64.urlsafe_b64decode(part.encode("ascii"))) == 32
            except (binascii.Error, ValueError):
                valid = False
            if not valid:
                raise ValueError(f"key {n} is not a Fernet key (`arq-jobs secret-key` prints a new one)")
        return value


def pool_class_name(queue: str) -> str:
    """The name under which `workers` offers a queue's worker settings: `high` → HighWorkerSettings,
    `bulk-email` → BulkEmailWorkerSettings."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_.]", queue)) + "WorkerSettings"


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once; tests build `Settings(...)` directly instead."""
    return Settings()


def describe_error(error: ValidationError) -> str:
    """One line naming each bad variable and what is wrong with it."""
    problems = []
    for item in error.errors(include_url=False):
        field = ".".join(str(part) for part in item["loc"])
        # a check across fields (no loc) names its variables itself
        problems.append(f"{ENV_PREFIX}{field.upper()}: {item['msg']}" if field else item["msg"])
    return "invalid settings: " + "; ".join(problems)


def load_settings() -> Settings:
    """Read the settings, or stop the process with one line saying which variable is wrong."""
    try:
        return get_settings()
    except ValidationError as error:
        raise SystemExit(describe_error(error)) from None
