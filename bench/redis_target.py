"""Which Redis the benchmarks run against: `JOBS_REDIS_URL` when set, else the machine's own Redis on
127.0.0.1:6379 (database 14) when it answers, else an embedded redis-server started for the run."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from devserver.redis_server import EmbeddedRedis, is_reachable

LOCAL_REDIS = "redis://127.0.0.1:6379/14"

Source = Literal["JOBS_REDIS_URL", "local", "embedded"]


@dataclass(frozen=True, slots=True)
class RedisTarget:
    url: str
    source: Source

    @property
    def redacted_url(self) -> str:
        """The URL without its password, for reports."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = f"{parts.username or ''}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))


@contextmanager
def redis_target() -> Iterator[RedisTarget]:
    """The Redis to use, for the duration of the `with` block (an embedded one is stopped after)."""
    configured = os.environ.get("JOBS_REDIS_URL")
    if configured:
        yield RedisTarget(configured, "JOBS_REDIS_URL")
    elif is_reachable(LOCAL_REDIS):
        yield RedisTarget(LOCAL_REDIS, "local")
    else:
        with EmbeddedRedis() as embedded:
            yield RedisTarget(embedded.url, "embedded")
