"""The CLI's connection to the core: settings and task registry read exactly as the API and the
workers read them (`JOBS_*`, `.env`, `JOBS_TASK_PACKAGES`), one ArqRedis for the command, and the
translation of whatever goes wrong into a one-line `CliError`."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypeVar

import typer
from arq.connections import ArqRedis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from arq_jobs._cli.errors import CliError, ExitCode, describe, exit_code_for
from arq_jobs._client import JobClient
from arq_jobs._config import Settings, load_settings
from arq_jobs._connection import create_arq
from arq_jobs._errors import JobsError
from arq_jobs._redis_errors import describe_redis_error
from arq_jobs._tasks.registry import TaskRegistry, load_registry

T = TypeVar("T")

OpenClient = Callable[[], AbstractAsyncContextManager[JobClient]]


def display_url(url: str) -> str:
    """A Redis URL fit to print: its password (if any) masked."""
    return re.sub(r"://([^:@/]*):[^@/]*@", r"://\1:***@", url)


def redis_failure(settings: Settings, error: RedisError) -> CliError:
    where = f"Redis at {display_url(str(settings.redis_url))}"
    if isinstance(error, RedisConnectionError | RedisTimeoutError):
        return CliError(f"{where} is unreachable: {describe_redis_error(error)}", ExitCode.REDIS_UNAVAILABLE)
    return CliError(f"{where} refused the request: {describe_redis_error(error)}", ExitCode.REDIS_UNAVAILABLE)


@asynccontextmanager
async def client_session(
    settings: Settings, registry: TaskRegistry, arq: ArqRedis
) -> AsyncIterator[JobClient]:
    """A JobClient on `arq`, closing it afterwards; core and Redis errors become CliErrors."""
    client = JobClient(arq, settings, registry)
    try:
        yield client
    except JobsError as error:
        raise CliError(describe(error, registry), exit_code_for(error)) from None
    except RedisError as error:
        raise redis_failure(settings, error) from None
    finally:
        await arq.aclose()
        await arq.connection_pool.disconnect()


def open_client() -> AbstractAsyncContextManager[JobClient]:
    """A session from the environment, like the API's: settings, the task registry, an ArqRedis."""
    try:
        settings = load_settings()
        registry = load_registry(settings)
    except SystemExit as stop:  # the core's one-line "invalid settings: ..."
        raise CliError(str(stop.code), ExitCode.SETTINGS) from None
    return client_session(settings, registry, create_arq(settings))


def fail(message: str, code: ExitCode) -> typer.Exit:
    """Print `error: <message>` on stderr; raise the returned Exit to end with `code`."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(int(code))


def run(ctx: typer.Context, work: Callable[[JobClient], Awaitable[T]]) -> T:
    """Run `work` with a client in a fresh event loop; a CliError ends the process with its line and
    code. `ctx.obj` may hold another OpenClient (tests)."""
    opener: OpenClient = ctx.find_root().obj or open_client

    async def main() -> T:
        async with opener() as client:
            return await work(client)

    try:
        return asyncio.run(main())
    except CliError as error:
        raise fail(error.message, error.code) from None
    except KeyboardInterrupt:
        raise fail("interrupted", ExitCode.INTERRUPTED) from None
