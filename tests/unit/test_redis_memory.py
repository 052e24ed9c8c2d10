"""The start-up check of Redis's maxmemory-policy (arq_jobs._redis_memory): a WARNING saying why when
Redis may evict keys, nothing when it will not, and nothing (a DEBUG line) when CONFIG cannot be read."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from arq.connections import ArqRedis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoPermissionError, ResponseError

from arq_jobs._redis_memory import maxmemory_policy, warn_if_evicting

LOGGER = "arq_jobs._redis_memory"


class StubRedis:
    """Answers CONFIG GET maxmemory-policy with `policy`, or raises `error`, after `delay_s`."""

    def __init__(self, policy: str | None = None, error: Exception | None = None, delay_s: float = 0) -> None:
        self.policy = policy
        self.error = error
        self.delay_s = delay_s
        self.asked: list[str] = []

    async def config_get(self, pattern: str) -> dict[str, Any]:
        self.asked.append(pattern)
        await asyncio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        return {} if self.policy is None else {pattern: self.policy}


def lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-ttl", "allkeys-random"])
async def test_an_evicting_policy_is_a_warning_that_says_why(
    caplog: pytest.LogCaptureFixture, policy: str
) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    redis = StubRedis(policy)
    await warn_if_evicting(redis, "API", 1.0)  # type: ignore[arg-type]
    assert redis.asked == ["maxmemory-policy"]
    assert lines(caplog, logging.WARNING) == [
        f"API: Redis's maxmemory-policy is {policy}, not noeviction: when Redis reaches maxmemory it evicts "
        "keys, silently dropping queued jobs, their records and results. Set maxmemory-policy noeviction "
        "(Redis then refuses writes when full: enqueues answer 503 until memory is freed, and no job is lost)"
    ]


@pytest.mark.parametrize(
    "redis",
    [
        StubRedis("noeviction"),
        StubRedis(None),  # a Redis that does not say
        StubRedis(error=NoPermissionError("this user has no permissions to run the 'config|get' command")),
        StubRedis(error=ResponseError("unknown command 'config'")),  # renamed away (managed Redis)
        StubRedis(error=RedisConnectionError("Error 111 connecting")),
        StubRedis("allkeys-lru", delay_s=5),  # too slow: given up after the timeout
    ],
)
async def test_nothing_is_said_when_redis_will_not_evict_or_cannot_be_asked(
    caplog: pytest.LogCaptureFixture, redis: StubRedis
) -> None:
    caplog.set_level(logging.DEBUG, LOGGER)
    await warn_if_evicting(redis, "API", 0.05)  # type: ignore[arg-type]
    assert lines(caplog, logging.WARNING) == []


async def test_fakeredis_without_config_reads_as_unknown(arq_redis: ArqRedis) -> None:
    assert await maxmemory_policy(arq_redis, 1.0) is None
