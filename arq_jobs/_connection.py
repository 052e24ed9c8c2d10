"""The pooled ArqRedis the API, the CLI and the benchmarks enqueue and read through."""

from __future__ import annotations

from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool

from arq_jobs._config import Settings
from arq_jobs._keys import Keys
from arq_jobs._serializer import dumps, loads


def create_arq(settings: Settings) -> ArqRedis:
    """A pooled ArqRedis with our JSON serializer; it connects on first use, so the app starts even
    while Redis is down (and answers 503 until it is back)."""
    pool = ConnectionPool.from_url(
        str(settings.redis_url),
        socket_connect_timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s,
    )
    return ArqRedis(
        pool,
        job_serializer=dumps,
        job_deserializer=loads,
        default_queue_name=Keys(settings.key_prefix).queue(settings.queue_name),
        expires_extra_ms=settings.job_expires_s * 1000,
    )
