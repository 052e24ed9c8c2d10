"""The systems compared, and how the harness drives each within one run ("deployment"): enqueue jobs,
start its worker and its HTTP app, read when each job was enqueued, started and finished from the
system's own records, and delete every key the run wrote.

- `ours`: `JobClient` enqueues; `arq workers.WorkerSettings` runs the jobs (one process, or several
  started alike); `python -m app` serves HTTP (`JOBS_API_WORKERS` processes where asked). Settings
  are the defaults (plus any `JOBS_*` variable in the harness's environment), with the bench tasks
  loaded; logs at INFO (the default: one line per job start and end) to a file.
  Timings: `JobClient.statuses` (ms precision).
- `arq`: plain ARQ 0.28 at its defaults (`bench.plain_arq`: max_jobs 10, poll_delay 0.5 s); its app is
  `bench.plain_app`. Timings: ARQ's stored `JobResult` (enqueue/start/finish times, ms precision).
- `arq-tuned`: the same with poll_delay 0.01 s and max_jobs 100 (our default concurrency).
- `saq` (0.26), `taskiq` (0.13 with taskiq-redis): each in its own virtual environment, installed on
  first use (bench/peer_systems.py); concurrency 100 in one worker process; only drain, sleep, latency.
Workloads that set a concurrency set it for every system (JOBS_WORKER_CONCURRENCY / max_jobs).
Every system logs at its default level (ours, ARQ, taskiq: INFO; SAQ: WARNING), to a file.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from arq import ArqRedis, create_pool
from arq.connections import RedisSettings
from arq.jobs import DeserializationError, deserialize_result

from arq_jobs._client import JobClient
from arq_jobs._config import Settings
from arq_jobs._connection import create_arq
from arq_jobs._jobs.states import JobState
from arq_jobs._keys import Keys
from arq_jobs._tasks.registry import load_registry
from bench.processes import arq_command, python_command

SystemName = Literal["ours", "arq", "arq-tuned", "saq", "taskiq"]
SYSTEMS: tuple[SystemName, ...] = ("ours", "arq", "arq-tuned", "saq", "taskiq")
BASE_SYSTEMS: tuple[SystemName, ...] = ("ours", "arq", "arq-tuned")  # --smoke's default
PEER_SYSTEMS: tuple[SystemName, ...] = ("saq", "taskiq")  # no HTTP app: drain, sleep, latency only
JobKind = Literal["noop", "sleep"]

SLEEP_S = 0.01
TUNED_POLL_DELAY_S = 0.01
TUNED_MAX_JOBS = 100
BENCH_TASK_PACKAGES = ("workers.tasks", "bench.tasks")
CHUNK = 500


@dataclass(frozen=True, slots=True)
class JobTiming:
    """One job as its system recorded it (epoch ms)."""

    job_id: str
    enqueued_ms: int | None
    started_ms: int | None
    finished_ms: int | None
    succeeded: bool
    error: str | None = None  # why it did not succeed, as the system recorded it (peers: SAQ's "swept")


@dataclass(frozen=True, slots=True)
class Command:
    argv: list[str]
    env: dict[str, str]


def to_ms(value: Any) -> int | None:
    return None if value is None else round(value.timestamp() * 1000)


class Deployment(ABC):
    """One system's isolated corner of Redis for one run (its own key prefix or queue)."""

    system: SystemName
    tag: str
    redis: ArqRedis
    enqueued: list[str]

    @property
    @abstractmethod
    def queue_key(self) -> str:
        """The ARQ queue (sorted set) the worker serves."""

    @property
    @abstractmethod
    def worker_ready_key(self) -> str:
        """A key the worker writes once it polls its queue (ARQ's health check)."""

    api_ready_path: str
    enqueue_path = "/jobs/noop"
    batch_path: str | None = None  # POST {"items": [...]}: many jobs in one request (ours only)
    status_path = "/jobs/"
    headers: dict[str, str] = {}  # sent with every HTTP request to the API (ours: its API key)

    def later_work_s(self) -> float:
        """How long after a job ended the system may still change what Redis keeps of it on its own
        (ours: an ended job's event stream expires `events_keep_s` later); 0: nothing."""
        return 0.0

    def header_args(self) -> list[str]:
        """`--header NAME:VALUE` arguments of bench.loadgen for `headers`."""
        return [arg for name, value in self.headers.items() for arg in ("--header", f"{name}:{value}")]

    async def enqueue(self, kind: str, payload: dict[str, Any] | None = None) -> str:
        """Enqueue one job of `kind` (`noop`, `sleep`; ours: any task, with `payload`); its id."""
        job_id = await self._enqueue(kind, payload)
        self.enqueued.append(job_id)
        return job_id

    @abstractmethod
    async def _enqueue(self, kind: str, payload: dict[str, Any] | None) -> str: ...

    @abstractmethod
    def worker(self, concurrency: int | None = None) -> Command:
        """How to start this system's worker (`concurrency` None: the system's own setting)."""

    @abstractmethod
    def api(self, port: int, processes: int = 1) -> Command:
        """How to start this system's HTTP app on `port`, with `processes` server processes."""

    @abstractmethod
    async def timings(self, job_ids: Sequence[str]) -> list[JobTiming]:
        """Each job's recorded times (a job with no record yet has None times)."""

    @abstractmethod
    async def cleanup(self) -> int:
        """Delete every key this deployment wrote (run after its processes stopped); how many."""

    async def enqueue_many(
        self, kind: str, count: int, payload: dict[str, Any] | None = None, batch: int = CHUNK
    ) -> list[str]:
        ids: list[str] = []
        for start in range(0, count, batch):
            size = min(batch, count - start)
            ids += await asyncio.gather(*(self.enqueue(kind, payload) for _ in range(size)))
        return ids

    async def queued(self) -> int:
        return int(await self.redis.zcard(self.queue_key))

    async def results(self, job_ids: Sequence[str]) -> int:
        """How many of the jobs have an ARQ result (ended)."""
        found = 0
        for start in range(0, len(job_ids), CHUNK):
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id in job_ids[start : start + CHUNK]:
                    pipe.exists(Keys.arq_result(job_id))
                found += sum(await pipe.execute())
        return found

    async def delete(self, keys: Sequence[str]) -> int:
        deleted = 0
        for start in range(0, len(keys), 1000):
            deleted += int(await self.redis.delete(*keys[start : start + 1000]))
        return deleted

    async def scan(self, pattern: str) -> list[str]:
        return [key.decode() async for key in self.redis.scan_iter(match=pattern, count=2000)]

    async def aclose(self) -> None:
        await self.redis.aclose()

    def describe(self) -> dict[str, Any]:
        return {}


LOG_LEVEL = "INFO"  # both systems at their default level


def base_env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


class Ours(Deployment):
    system: SystemName = "ours"
    api_ready_path = "/health/ready"
    batch_path = "/jobs/noop/batch"

    def __init__(self, redis_url: str, tag: str) -> None:
        self.redis_url = redis_url
        self.tag = tag
        self.enqueued = []
        self.prefix = f"bench-{tag}"
        self.settings = Settings(
            redis_url=redis_url,
            key_prefix=self.prefix,
            task_packages=BENCH_TASK_PACKAGES,
            log_level=LOG_LEVEL,
        )
        self.redis = create_arq(self.settings)
        self.client = JobClient(self.redis, self.settings, load_registry(self.settings))
        # the API as deployed: authentication on, every request with a key (its check is in the figures)
        self.token = secrets.token_urlsafe(32)
        self.headers = {"Authorization": f"Bearer {self.token}"}

    @property
    def queue_key(self) -> str:
        return Keys(self.prefix).queue(self.settings.queue_name)

    @property
    def worker_ready_key(self) -> str:
        return f"{self.queue_key}:health-check:{socket.gethostname()}"

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **base_env(),
            "JOBS_REDIS_URL": self.redis_url,
            "JOBS_KEY_PREFIX": self.prefix,
            "JOBS_LOG_LEVEL": LOG_LEVEL,
            "JOBS_TASK_PACKAGES": ",".join(BENCH_TASK_PACKAGES),
            **extra,
        }

    async def _enqueue(self, kind: str, payload: dict[str, Any] | None) -> str:
        if payload is None:
            payload = {"seconds": SLEEP_S} if kind == "sleep" else {}
        return (await self.client.enqueue_payload(kind, payload)).job_id

    def later_work_s(self) -> float:
        return float(getattr(self.settings, "events_keep_s", 0))

    def worker(self, concurrency: int | None = None) -> Command:
        extra = {} if concurrency is None else {"JOBS_WORKER_CONCURRENCY": str(concurrency)}
        return Command(arq_command("workers.WorkerSettings"), self.env(**extra))

    def api(self, port: int, processes: int = 1) -> Command:
        extra = {} if processes == 1 else {"JOBS_API_WORKERS": str(processes)}
        return Command(
            python_command("app"),
            self.env(
                JOBS_API_HOST="127.0.0.1",
                JOBS_API_PORT=str(port),
                JOBS_AUTH="keys",
                JOBS_ADMIN_TOKEN=self.token,
                **extra,
            ),
        )

    async def timings(self, job_ids: Sequence[str]) -> list[JobTiming]:
        found: list[JobTiming] = []
        for start in range(0, len(job_ids), CHUNK):
            chunk = job_ids[start : start + CHUNK]
            for job_id, status in zip(chunk, await self.client.statuses(chunk), strict=True):
                if status is None:
                    found.append(JobTiming(job_id, None, None, None, False))
                    continue
                found.append(
                    JobTiming(
                        job_id,
                        to_ms(status.enqueued_at),
                        to_ms(status.started_at),
                        to_ms(status.finished_at),
                        status.status is JobState.SUCCEEDED,
                    )
                )
        return found

    async def cleanup(self) -> int:
        keys = await self.scan(f"{self.prefix}:*")
        record = Keys(self.prefix).record("")
        ids = set(self.enqueued) | {key[len(record) :] for key in keys if key.startswith(record)}
        for job_id in ids:
            keys += [Keys.arq_job(job_id), Keys.arq_result(job_id)]
            keys += [Keys.arq_retry(job_id), Keys.arq_in_progress(job_id)]
        return await self.delete(keys)

    def describe(self) -> dict[str, Any]:
        keys = ("worker_concurrency", "poll_delay_s", "lease_s", "result_ttl_s", "queue_name")
        settings = {key: getattr(self.settings, key) for key in keys}
        settings.update(
            {k: v for k, v in self.settings.model_dump().items() if "retention" in k or "keep" in k}
        )
        overrides = {k: v for k, v in os.environ.items() if k.startswith("JOBS_") and k != "JOBS_REDIS_URL"}
        return {
            "settings": settings,
            "env_overrides": overrides,
            "log_level": LOG_LEVEL,
            "retention": self.retention(),
        }

    def retention(self) -> str:
        keep_s = getattr(self.settings, "keep_s", None)  # by outcome, where the settings have it
        kept = keep_s(True) if callable(keep_s) else self.settings.result_ttl_s
        events = getattr(self.settings, "events_keep_s", None)
        streams = "" if events is None else f", its event stream {events:,} s"
        return (
            f"our defaults (settings above): a succeeded job's ARQ result, record and index entries kept "
            f"{kept:,} s{streams}"
        )


class PlainArq(Deployment):
    api_ready_path = "/health"

    def __init__(self, system: SystemName, redis_url: str, tag: str, redis: ArqRedis) -> None:
        self.system = system
        self.redis_url = redis_url
        self.tag = tag
        self.enqueued = []
        self.queue = f"bench-arq-{tag}"
        self.id_prefix = f"bench-{tag}-"
        self.redis = redis
        self.tuned = system == "arq-tuned"

    @classmethod
    async def open(cls, system: SystemName, redis_url: str, tag: str) -> PlainArq:
        return cls(system, redis_url, tag, await create_pool(RedisSettings.from_dsn(redis_url)))

    @property
    def queue_key(self) -> str:
        return self.queue

    @property
    def worker_ready_key(self) -> str:
        return f"{self.queue}:health-check"

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **base_env(),
            "BENCH_ARQ_REDIS_URL": self.redis_url,
            "BENCH_ARQ_QUEUE": self.queue,
            "BENCH_ARQ_ID_PREFIX": self.id_prefix,
            **extra,
        }

    async def _enqueue(self, kind: str, payload: dict[str, Any] | None) -> str:
        if kind not in ("noop", "sleep") or payload:
            raise ValueError(f"plain ARQ runs only noop and sleep jobs with their default input, not {kind}")
        args = (SLEEP_S,) if kind == "sleep" else ()
        job_id = f"{self.id_prefix}{uuid.uuid4().hex}"
        job = await self.redis.enqueue_job(kind, *args, _job_id=job_id, _queue_name=self.queue)
        if job is None:
            raise RuntimeError(f"job id {job_id} already in use")
        return job_id

    def worker_settings(self, concurrency: int | None) -> dict[str, str]:
        env: dict[str, str] = {"BENCH_ARQ_LOG_LEVEL": LOG_LEVEL}
        if self.tuned:
            env["BENCH_ARQ_POLL_DELAY_S"] = str(TUNED_POLL_DELAY_S)
            env["BENCH_ARQ_MAX_JOBS"] = str(concurrency or TUNED_MAX_JOBS)
        elif concurrency is not None:
            env["BENCH_ARQ_MAX_JOBS"] = str(concurrency)
        return env

    def worker(self, concurrency: int | None = None) -> Command:
        argv = arq_command(
            "bench.plain_arq.WorkerSettings", "--custom-log-dict", "bench.plain_arq.LOG_CONFIG"
        )
        return Command(argv, self.env(**self.worker_settings(concurrency)))

    def api(self, port: int, processes: int = 1) -> Command:
        if processes != 1:
            raise NotImplementedError("the plain ARQ app runs one process")
        return Command(python_command("bench.plain_app"), self.env(BENCH_HTTP_PORT=str(port)))

    async def timings(self, job_ids: Sequence[str]) -> list[JobTiming]:
        found: list[JobTiming] = []
        for start in range(0, len(job_ids), CHUNK):
            chunk = job_ids[start : start + CHUNK]
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id in chunk:
                    pipe.get(Keys.arq_result(job_id))
                raws = await pipe.execute()
            for job_id, raw in zip(chunk, raws, strict=True):
                try:
                    result = None if raw is None else deserialize_result(raw)
                except DeserializationError:
                    result = None
                if result is None:
                    found.append(JobTiming(job_id, None, None, None, False))
                else:
                    found.append(
                        JobTiming(
                            job_id,
                            to_ms(result.enqueue_time),
                            to_ms(result.start_time),
                            to_ms(result.finish_time),
                            result.success,
                        )
                    )
        return found

    async def cleanup(self) -> int:
        keys = await self.scan(f"arq:*:{self.id_prefix}*") + await self.scan(f"{self.queue}*")
        return await self.delete(keys)

    def describe(self) -> dict[str, Any]:
        retention = "ARQ's default keep_result: each job's pickled result kept 3,600 s"
        if self.tuned:
            return {
                "poll_delay_s": TUNED_POLL_DELAY_S,
                "max_jobs": TUNED_MAX_JOBS,
                "log_level": LOG_LEVEL,
                "retention": retention,
            }
        return {
            "poll_delay_s": 0.5,
            "max_jobs": 10,
            "log_level": LOG_LEVEL,
            "note": "ARQ defaults",
            "retention": retention,
        }


async def open_deployment(system: SystemName, redis_url: str) -> Deployment:
    tag = uuid.uuid4().hex[:10]
    if system == "ours":
        return Ours(redis_url, tag)
    if system in PEER_SYSTEMS:
        from bench.peer_systems import PeerDeployment  # imports this module

        return await PeerDeployment.open(system, redis_url, tag)
    return await PlainArq.open(system, redis_url, tag)
