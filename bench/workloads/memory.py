"""Memory: what Redis keeps per finished job. On a redis-server of its own (bench/own_redis.py), with the
system's worker running and idle after a few warm-up jobs (scripts loaded, connections open, every
per-queue key made), `INFO memory` before; then N (3,000) `noop` jobs enqueued and drained, all
finished (`INFO memory` again: the figure "at the end"); then a wait for what the system does later on
its own, the worker still running — --memory-settle-s (5 s), or longer where the system says so (ours:
an ended job's event stream expires `events_keep_s`, 60 s, after it ended; the wait lasts until then
plus 2 s, then until Redis's active expiry stops removing keys) — and `INFO memory` a last time: the
figure kept. Bytes per job = the growth of used_memory, less the client buffers (`mem_clients_normal`:
the enqueuing pools' connections, not the jobs), ÷ N. Keys per job likewise from DBSIZE.

Each system keeps what it keeps by default (its deployment's `retention` in the JSON's `systems`):
ours its defaults; ARQ its keep_result (1 h); SAQ its Job.ttl (600 s); taskiq-redis results without
expiry and the stream's messages. Nothing of that expires within the measurement.
"""

from __future__ import annotations

import asyncio
import time

from bench.harness import Harness
from bench.options import Options
from bench.own_redis import read_memory
from bench.results import RunResult, failures
from bench.systems import Deployment, SystemName

WARMUP_JOBS = 20
POLL_S = 0.2
EXPIRY_POLLS = 20


async def settle(deployment: Deployment, options: Options) -> float:
    """Wait for what the system does later on its own: --memory-settle-s, or (outside smoke mode)
    until its later work is due (`Deployment.later_work_s`, ours: 60 s) plus 2 s, then until Redis's
    active expiry stops removing keys (at most 10 s more). How long it waited."""
    clock = time.monotonic()
    wait = options.memory_settle_s
    if not options.smoke:
        wait = max(wait, deployment.later_work_s() + 2)
    await asyncio.sleep(wait)
    keys = await deployment.redis.dbsize()
    for _ in range(EXPIRY_POLLS):
        await asyncio.sleep(0.5)
        now = await deployment.redis.dbsize()
        if now >= keys:
            break
        keys = now
    return round(time.monotonic() - clock, 1)


async def run(harness: Harness, system: SystemName, run_no: int, options: Options) -> RunResult:
    jobs = options.memory_jobs
    async with harness.own_redis() as own, own.deployment(system) as deployment:
        async with own.worker(deployment, ready=True) as worker:
            warm = await deployment.enqueue_many("noop", WARMUP_JOBS)
            await own.wait_done(deployment, warm, worker, options.timeout_s(len(warm)), POLL_S)
            await asyncio.sleep(min(1.0, options.memory_settle_s))
            before = await read_memory(deployment.redis)
            ids = await deployment.enqueue_many("noop", jobs)
            await own.wait_done(deployment, ids, worker, options.timeout_s(len(ids)), POLL_S)
            at_end = await read_memory(deployment.redis)
            waited = await settle(deployment, options)
            after = await read_memory(deployment.redis)
        timings = await deployment.timings(ids)
    per_job = (after.data - before.data) / jobs if jobs else None
    return RunResult(
        "memory",
        system,
        run_no,
        metrics={
            "redis_bytes_per_job": None if per_job is None else round(per_job, 1),
            "redis_keys_per_job": round((after.keys - before.keys) / jobs, 3) if jobs else None,
            "redis_bytes_per_job_at_end": round((at_end.data - before.data) / jobs, 1) if jobs else None,
        },
        counts={"enqueued": len(ids), "succeeded": sum(t.succeeded for t in timings)},
        details={
            **({"failures": lost} if (lost := failures(timings)) else {}),
            "jobs": jobs,
            "warmup_jobs": len(warm),
            "settled_s": waited,
            "before": before.to_json(),
            "when_all_ended": at_end.to_json(),
            "after_settle": after.to_json(),
            "later_work_s": deployment.later_work_s(),
            "redis_bytes_per_job_with_client_buffers": round((after.used - before.used) / jobs, 1)
            if jobs
            else None,
            "redis": own.redis_description(),
        },
    )
