"""The peer systems, `saq` and `taskiq`: each installed on first use into its own virtual environment
from pinned versions (not the project's lock file), under `$XDG_CACHE_HOME/arq-jobs-bench/` (default
`~/.cache/arq-jobs-bench/<system>-<version>/`), and reused while its pins are unchanged.

The harness cannot import either library, so each deployment talks to an agent running in the peer's
environment (bench/peers/agent.py): it enqueues the library's way, reports how many jobs have ended
(SAQ: terminal status in `Queue.jobs`; taskiq: `is_result_ready` on the result backend) and hands
back the records. The worker is the library's own CLI, concurrency matched to ours (100 unless the
workload sets one), one process, at its default log level (SAQ: WARNING; taskiq: INFO).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings

from bench import processes
from bench.processes import Child
from bench.systems import SLEEP_S, TUNED_MAX_JOBS, Command, Deployment, JobTiming, SystemName, base_env


@dataclass(frozen=True, slots=True)
class Peer:
    system: SystemName
    version: str
    pins: tuple[str, ...]
    module: str  # in bench/peers, run by the peer's python
    log_level: str  # its default

    @property
    def venv(self) -> Path:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        return cache / "arq-jobs-bench" / f"{self.system}-{self.version}"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


SAQ_PINS = ("saq==0.26.4", "redis==5.3.1", "hiredis==3.5.0", "typing-extensions==4.16.0")  # redis-py as ours
TASKIQ_PINS = ("taskiq==0.13.0", "taskiq-redis==1.2.4", "redis==8.2.0", "hiredis==3.5.0")  # needs redis 8
PEERS: dict[str, Peer] = {
    "saq": Peer("saq", "0.26.4", SAQ_PINS, "bench.peers.saq_peer", "WARNING"),
    "taskiq": Peer("taskiq", "0.13.0", TASKIQ_PINS, "bench.peers.taskiq_peer", "INFO"),
}
RETENTION = {  # what each keeps of an ended job at its defaults (bench/workloads/memory.py measures it)
    "saq": "SAQ's default: each job's record, its result in it, kept Job.ttl = 600 s after it ends",
    "taskiq": "taskiq-redis's defaults: results kept with no expiry (keep_results=True, no result_ex_time) "
    "and every message left in the stream (no maxlen)",
}
DEPARTURES = {  # where a peer's worker is not at its defaults, and why
    "saq": "its worker's first sweep is deferred by one interval (60 s): at start it races the dequeue of "
    "a backlog, aborting a job as 'swept' and stalling another ~5 s (tobymao/saq#124, #277)",
}
MARKER = "bench-pins.txt"  # written last: a venv without it (an interrupted install) is made again


def ensure_venv(peer: Peer) -> Path:
    """The peer's python, its environment made and its pins installed if not done yet."""
    marker = peer.venv / MARKER
    wanted = "\n".join(peer.pins) + "\n"
    if marker.exists() and marker.read_text() == wanted and peer.python.exists():
        return peer.python
    print(f"bench: installing {' '.join(peer.pins)} into {peer.venv}", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(peer.venv)], check=True)
    pip = [str(peer.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *peer.pins]
    subprocess.run(pip, check=True, stdin=subprocess.DEVNULL)
    marker.write_text(wanted)
    return peer.python


def peer_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in base_env().items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    return {**env, **extra}


class Agent:
    """The peer's agent process: JSON requests on its stdin, replies on its stdout."""

    def __init__(self, child: Child, stdin: asyncio.StreamWriter, stdout: asyncio.StreamReader) -> None:
        self.child = child
        self.stdin = stdin
        self.stdout = stdout
        self.ids = itertools.count(1)
        self.waiting: dict[int, asyncio.Future[Any]] = {}
        self.reader = asyncio.create_task(self.read())

    @classmethod
    async def start(cls, python: Path, module: str, env: dict[str, str], log_path: Path) -> Agent:
        with log_path.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                str(python), "-m", module, cwd=processes.ROOT, env=env, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=log, start_new_session=True, limit=2**26,
            )  # fmt: skip
        processes.track(process.pid)
        assert process.stdin is not None and process.stdout is not None
        agent = cls(Child(f"{module} agent", process, log_path), process.stdin, process.stdout)
        agent.waiting[0] = asyncio.get_running_loop().create_future()
        await asyncio.wait_for(agent.waiting[0], 60)
        return agent

    async def read(self) -> None:
        while line := await self.stdout.readline():
            message = json.loads(line)
            future = self.waiting.pop(message["id"], None)
            if future is None or future.done():
                continue
            if "error" in message:
                future.set_exception(RuntimeError(f"{self.child.name}: {message['error']}"))
            else:
                future.set_result(message["ok"])
        error = RuntimeError(f"{self.child.name} exited; its log ends:\n{self.child.log_tail()}")
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(error)
        self.waiting.clear()

    async def call(self, op: str, **args: Any) -> Any:
        self.child.check_alive()
        request_id = next(self.ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting[request_id] = future
        self.stdin.write(json.dumps({"id": request_id, "op": op, **args}).encode() + b"\n")
        await self.stdin.drain()
        return await future

    async def stop(self) -> None:
        if self.child.running:
            self.stdin.close()
            try:
                await asyncio.wait_for(self.child.process.wait(), 10)
            except TimeoutError:
                pass
        await self.child.stop()
        self.reader.cancel()


def ms(value: Any) -> int | None:
    return None if value is None else int(value)


class PeerDeployment(Deployment):
    api_ready_path = "/health"

    def __init__(self, peer: Peer, python: Path, redis_url: str, tag: str) -> None:
        self.peer = peer
        self.system = peer.system
        self.python = python
        self.redis_url = redis_url
        self.tag = tag
        self.enqueued = []
        self.queue = f"bench-{peer.system}-{tag}"
        self.agent: Agent | None = None
        self.agent_lock = asyncio.Lock()  # concurrent first calls start one agent
        self.log_path = Path(tempfile.gettempdir()) / f"bench-agent-{self.queue}.log"

    @classmethod
    async def open(cls, system: SystemName, redis_url: str, tag: str) -> PeerDeployment:
        peer = PEERS[system]
        python = await asyncio.to_thread(ensure_venv, peer)
        deployment = cls(peer, python, redis_url, tag)
        deployment.redis = await create_pool(RedisSettings.from_dsn(redis_url))
        return deployment

    @property
    def queue_key(self) -> str:
        return self.queue

    @property
    def worker_ready_key(self) -> str:
        return f"bench-{self.system}-{self.tag}:ready"

    def env(self, **extra: str) -> dict[str, str]:
        return peer_env(
            BENCH_PEER_REDIS_URL=self.redis_url,
            BENCH_PEER_QUEUE=self.queue,
            BENCH_PEER_READY_KEY=self.worker_ready_key,
            **extra,
        )

    async def _agent(self) -> Agent:
        async with self.agent_lock:
            if self.agent is None:
                self.agent = await Agent.start(self.python, self.peer.module, self.env(), self.log_path)
            return self.agent

    async def _enqueue(self, kind: str, payload: dict[str, Any] | None) -> str:
        ids = await self._enqueue_n(kind, 1, payload)
        return ids[0]

    async def _enqueue_n(self, kind: str, n: int, payload: dict[str, Any] | None) -> list[str]:
        if kind not in ("noop", "sleep") or payload:
            raise ValueError(
                f"{self.system} runs only noop and sleep jobs with their default input, not {kind}"
            )
        ids: list[str] = await (await self._agent()).call("enqueue", kind=kind, n=n, seconds=SLEEP_S)
        return ids

    async def enqueue_many(
        self, kind: str, count: int, payload: dict[str, Any] | None = None, batch: int = 500
    ) -> list[str]:
        ids: list[str] = []
        for start in range(0, count, batch):
            ids += await self._enqueue_n(kind, min(batch, count - start), payload)
        self.enqueued += ids
        return ids

    def worker(self, concurrency: int | None = None) -> Command:
        n = str(concurrency or TUNED_MAX_JOBS)
        bin_dir = self.python.parent
        if self.system == "saq":
            return Command(
                [str(bin_dir / "saq"), f"{self.peer.module}.settings"], self.env(BENCH_PEER_CONCURRENCY=n)
            )
        argv = [str(bin_dir / "taskiq"), "worker", f"{self.peer.module}:broker", "--workers", "1"]
        return Command([*argv, "--max-async-tasks", n], self.env())

    def api(self, port: int, processes: int = 1) -> Command:
        raise NotImplementedError(f"{self.system} has no HTTP app in this benchmark")

    async def _progress(self) -> dict[str, int]:
        progress: dict[str, int] = await (await self._agent()).call("progress")
        return progress

    async def queued(self) -> int:
        progress = await self._progress()
        return progress["total"] - progress["done"]

    async def results(self, job_ids: Sequence[str]) -> int:
        ended: int = await (await self._agent()).call("ended", ids=list(job_ids))
        return ended

    async def timings(self, job_ids: Sequence[str]) -> list[JobTiming]:
        rows = await (await self._agent()).call("timings")
        by_id = {
            row[0]: JobTiming(row[0], ms(row[1]), ms(row[2]), ms(row[3]), bool(row[4]), *row[5:6])
            for row in rows
        }
        return [by_id.get(i, JobTiming(i, None, None, None, False)) for i in job_ids]

    async def cleanup(self) -> int:
        if self.agent is not None:
            await self.agent.stop()
        patterns = [f"saq:{self.queue}:*", f"saq:job:{self.queue}:*"] if self.system == "saq" else []
        keys = [
            key for p in [*patterns, f"{self.queue}*", self.worker_ready_key] for key in await self.scan(p)
        ]
        return await self.delete(sorted(set(keys)))

    async def aclose(self) -> None:
        try:
            if self.agent is not None:
                await self.agent.stop()
        finally:
            self.log_path.unlink(missing_ok=True)
            await super().aclose()

    def describe(self) -> dict[str, Any]:
        return {
            "pins": list(self.peer.pins),
            "venv": str(self.peer.venv),
            "concurrency": TUNED_MAX_JOBS,
            "worker_processes": 1,
            "log_level": self.peer.log_level,
            "retention": RETENTION[self.system],
            **({"departure": DEPARTURES[self.system]} if self.system in DEPARTURES else {}),
        }
