"""Running Lua scripts by their SHA1 (Redis caches them), loading one the first time it is missing."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from arq_jobs._scripts.script import Arg, Script


@cache
def sha1(source: str) -> str:
    return hashlib.sha1(source.encode()).hexdigest()


def source_and_sha(script: Script | str) -> tuple[str, str]:
    """A script file's code and SHA1, or those of a Lua source given as text."""
    if isinstance(script, Script):
        return script.source, script.sha
    return script, sha1(script)


async def run_script(redis: Redis, script: Script | str, keys: Sequence[str], args: Sequence[Arg]) -> Any:
    """EVALSHA `script`, or EVAL it when this Redis has not cached it yet (e.g. after a restart)."""
    source, sha = source_and_sha(script)
    argv = [arg if isinstance(arg, bytes) else str(arg) for arg in args]
    try:
        return await redis.evalsha(sha, len(keys), *keys, *argv)  # type: ignore[misc, arg-type]
    except NoScriptError:
        return await redis.eval(source, len(keys), *keys, *argv)  # type: ignore[misc, arg-type]
