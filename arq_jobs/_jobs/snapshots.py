"""Reading what is known of jobs — record, ARQ's result, in-progress and job keys — in one atomic script
(`job-snapshots-0.lua`) rather than a MULTI: the same consistent snapshot, which a Redis out of memory
still serves (Redis refuses every command queued in a MULTI once it is over maxmemory, reads too)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from arq_jobs._keys import Keys
from arq_jobs._scripts.run import run_script
from arq_jobs._scripts.script import load_script

SNAPSHOT_SCRIPT = load_script("job-snapshots-0.lua")


@dataclass(frozen=True, slots=True)
class JobSnapshot:
    record: dict[bytes, bytes]  # as HGETALL gives it: empty when there is none
    result: bytes | None
    in_progress: bool
    queued: bool


async def read_snapshots(redis: Redis, keys: Keys, job_ids: Sequence[str]) -> list[JobSnapshot]:
    """Each job's snapshot, in order, read at one instant in one round trip."""
    if not job_ids:
        return []
    args = SNAPSHOT_SCRIPT.args(record_prefix=keys.record(""), job_ids=list(job_ids))
    replies = await run_script(redis, SNAPSHOT_SCRIPT, [], args)
    return [
        JobSnapshot(
            record=dict(zip(flat[::2], flat[1::2], strict=True)),
            result=result,
            in_progress=bool(in_progress),
            queued=bool(queued),
        )
        for flat, result, in_progress, queued in replies
    ]
