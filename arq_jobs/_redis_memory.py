"""Living with Redis's memory limit.

Every job, record and result lives in Redis, so what Redis does when it reaches `maxmemory` matters:
with `maxmemory-policy noeviction` it refuses writes (the API answers 503 `redis_unavailable` with
`reason: out_of_memory`, workers hold their writes and retry) while reads go on; with any evicting policy
(`allkeys-lru`, `volatile-ttl`, ...) it deletes keys to make room — queued jobs, their records and results
disappear without a trace. The API and the workers say so at start-up (`warn_if_evicting`).
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

SAFE_POLICY = "noeviction"


async def maxmemory_policy(redis: Redis, timeout_s: float) -> str | None:
    """Redis's `maxmemory-policy`; None when it cannot be read (CONFIG refused by an ACL or a managed
    Redis, Redis down or slow)."""
    try:
        found = await asyncio.wait_for(redis.config_get("maxmemory-policy"), timeout_s)
    except (RedisError, OSError, TimeoutError) as error:
        log.debug("could not read Redis's maxmemory-policy: %r", error)
        return None
    policy = found.get("maxmemory-policy") if isinstance(found, dict) else None
    return policy if isinstance(policy, str) else None


async def warn_if_evicting(redis: Redis, who: str, timeout_s: float) -> None:
    """Log a WARNING when Redis's `maxmemory-policy` is not `noeviction` (`who`: the API, a worker);
    nothing when it cannot be read."""
    policy = await maxmemory_policy(redis, timeout_s)
    if policy is None or policy == SAFE_POLICY:
        return
    log.warning(
        "%s: Redis's maxmemory-policy is %s, not %s: when Redis reaches maxmemory it evicts keys, "
        "silently dropping queued jobs, their records and results. Set maxmemory-policy %s (Redis then "
        "refuses writes when full: enqueues answer 503 until memory is freed, and no job is lost)",
        who,
        policy,
        SAFE_POLICY,
        SAFE_POLICY,
    )
