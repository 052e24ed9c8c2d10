"""Running Lua scripts by their SHA1 (Redis caches them), loading one the first time it is missing."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError


@cache
def sha1(source: str) -> str:
    return hashlib.sha1(source.encode()).hexdigest()


async def run_script(
    redis: Redis, source: str, keys: Sequence[str], args: Sequence[str | int | float | bytes]
) -> Any:
    """EVALSHA `source`, or EVAL it when this Redis has not cached it yet (e.g. after a restart)."""
    argv = [arg if isinstance(arg, bytes) else str(arg) for arg in args]
    try:
        return await redis.evalsha(sha1(source), len(keys), *keys, *argv)  # type: ignore[misc, arg-type]
    except NoScriptError:
        return await redis.eval(source, len(keys), *keys, *argv)  # type: ignore[misc, arg-type]
