"""Settings → Redis connection options, the same for the API's pool and the workers' ARQ settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from arq.connections import RedisSettings
from pydantic import ValidationError
from redis._parsers.encoders import Encoder
from redis.asyncio import BlockingConnectionPool, Connection, SSLConnection
from redis.asyncio.sentinel import SentinelManagedConnection
from redis.exceptions import DataError

from arq_jobs import _arq
from arq_jobs._config import Settings, describe_error
from arq_jobs._connection import (
    QuickCheck,
    QuickPack,
    SentinelPool,
    connection_pool,
    create_arq,
    quick_packing,
    redis_options,
)
from arq_jobs._transactions import CoalescingArqRedis
from arq_jobs._worker.settings import redis_settings


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    names = ("ca.pem", "client.pem", "client.key", "other-ca.pem")
    for name in names:
        (tmp_path / name).write_text("x")
    return {name: str(tmp_path / name) for name in names}


def error_of(**fields: object) -> str:
    with pytest.raises(ValidationError) as refused:
        Settings(**fields)  # type: ignore[arg-type]
    return describe_error(refused.value)


def tls_of(redis: RedisSettings) -> dict[str, object]:
    return {
        name: getattr(redis, name)
        for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")
    }


def test_tls_options_from_the_url_reach_api_and_worker_alike(files: dict[str, str]) -> None:
    url = f"rediss://jobs:p%40ss@redis.internal:6380/3?ssl_ca_certs={files['ca.pem']}&ssl_cert_reqs=optional"
    settings = Settings(redis_url=url, redis_timeout_s=2.5)
    options = redis_options(settings)
    expected = {"ssl_ca_certs": files["ca.pem"], "ssl_cert_reqs": "optional"}
    assert options.tls == expected
    assert (options.host, options.port, options.db, options.username, options.password) == (
        "redis.internal",
        6380,
        3,
        "jobs",
        "p@ss",
    )
    pool = create_arq(settings).connection_pool
    assert issubclass(pool.connection_class, SSLConnection)
    kwargs = pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["username"], kwargs["password"]) == (
        "redis.internal",
        6380,
        3,
        "jobs",
        "p@ss",
    )
    assert (kwargs["ssl_ca_certs"], kwargs["ssl_cert_reqs"], kwargs["socket_timeout"]) == (
        files["ca.pem"],
        "optional",
        2.5,
    )
    worker = redis_settings(settings)
    assert isinstance(worker, _arq.OwnPoolSettings) and worker.ssl and not worker.sentinel
    assert worker.open_pool is not None
    own = worker.open_pool()  # the worker's pool: ours, with the same TLS files, coalescing transactions
    assert isinstance(own, CoalescingArqRedis) and isinstance(own.connection_pool, QuickCheck)
    assert own.connection_pool.connection_kwargs["ssl_ca_certs"] == files["ca.pem"]
    assert (worker.host, worker.port, worker.database, worker.username, worker.password) == (
        "redis.internal",
        6380,
        3,
        "jobs",
        "p@ss",
    )
    assert tls_of(worker) == {**expected, "ssl_certfile": None, "ssl_keyfile": None}
    assert worker.conn_timeout == 2


def test_tls_settings_win_over_the_url(files: dict[str, str]) -> None:
    settings = Settings(
        redis_url=f"rediss://127.0.0.1/0?ssl_ca_certs={files['other-ca.pem']}&ssl_cert_reqs=none",
        redis_ssl_ca_certs=files["ca.pem"],
        redis_ssl_certfile=files["client.pem"],
        redis_ssl_keyfile=files["client.key"],
    )
    expected = {
        "ssl_ca_certs": files["ca.pem"],
        "ssl_certfile": files["client.pem"],
        "ssl_keyfile": files["client.key"],
        "ssl_cert_reqs": "none",  # not set as a setting: the URL's
    }
    assert redis_options(settings).tls == expected
    assert {k: create_arq(settings).connection_pool.connection_kwargs[k] for k in expected} == expected
    assert tls_of(redis_settings(settings)) == expected


def test_plain_redis_has_no_tls_and_the_default_cert_check_is_required() -> None:
    assert redis_options(Settings(redis_url="redis://127.0.0.1:6379/0")).tls is None
    assert not redis_settings(Settings()).ssl
    assert redis_options(Settings(redis_url="rediss://127.0.0.1/0")).tls == {"ssl_cert_reqs": "required"}


def test_sentinels_give_api_and_worker_the_same_primary_options(files: dict[str, str]) -> None:
    settings = Settings(
        redis_url=f"rediss://jobs:secret@ignored:1/2?ssl_ca_certs={files['ca.pem']}",
        redis_sentinels="s1:26379,s2,[::1]:26380",
        redis_sentinel_master="mymaster",
        redis_sentinel_password="sentinel-pw",
        redis_timeout_s=3,
    )
    options = redis_options(settings)
    assert options.sentinels == (("s1", 26379), ("s2", 26379), ("::1", 26380))
    pool = connection_pool(options, socket_timeout=3)
    assert isinstance(pool, SentinelPool) and pool.service_name == "mymaster" and pool.is_master
    assert pool.connection_kwargs["db"] == 2 and pool.connection_kwargs["password"] == "secret"
    assert pool.connection_kwargs["ssl_ca_certs"] == files["ca.pem"]
    sentinel = pool.sentinel_manager.sentinels[0].connection_pool
    assert issubclass(sentinel.connection_class, SSLConnection)
    assert (sentinel.connection_kwargs["host"], sentinel.connection_kwargs["password"]) == (
        "s1",
        "sentinel-pw",
    )
    assert sentinel.connection_kwargs["ssl_ca_certs"] == files["ca.pem"]

    worker = redis_settings(settings)
    assert isinstance(worker, _arq.OwnPoolSettings) and worker.open_pool is not None
    assert (worker.sentinel, worker.sentinel_master, worker.host) == (
        True,
        "mymaster",
        list(options.sentinels),
    )
    own = worker.open_pool().connection_pool
    assert isinstance(own, SentinelPool)
    assert {
        k: v for k, v in own.connection_kwargs.items() if k not in ("connection_pool", "socket_timeout")
    } == {k: v for k, v in pool.connection_kwargs.items() if k not in ("connection_pool", "socket_timeout")}
    assert own.connection_kwargs["socket_timeout"] is None  # as ARQ's own pool: no read timeout


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"redis_sentinels": "s1:26379"}, "JOBS_REDIS_SENTINELS and JOBS_REDIS_SENTINEL_MASTER go together"),
        (
            {"redis_sentinel_master": "mymaster"},
            "JOBS_REDIS_SENTINELS and JOBS_REDIS_SENTINEL_MASTER go together",
        ),
        (
            {"redis_sentinels": "s1:port", "redis_sentinel_master": "m"},
            "JOBS_REDIS_SENTINELS: Value error, expected host:port",
        ),
        (
            {"redis_url": "redis+cluster://h:7000"},
            "JOBS_REDIS_URL: Value error, Redis Cluster is not supported",
        ),
        (
            {"redis_url": "redis://h/0?socket_timeout=1"},
            "JOBS_REDIS_URL: Value error, unsupported option socket_timeout",
        ),
        (
            {"redis_url": "redis://h/0?ssl_ca_certs=/ca.pem"},
            "JOBS_REDIS_URL's ssl_ca_certs: TLS options, but JOBS_REDIS_URL is not rediss://",
        ),
        (
            {"redis_ssl_cert_reqs": "none"},
            "JOBS_REDIS_SSL_CERT_REQS: TLS options, but JOBS_REDIS_URL is not rediss://",
        ),
        (
            {"redis_url": "rediss://h/0?ssl_cert_reqs=maybe"},
            "JOBS_REDIS_URL: Value error, ssl_cert_reqs must be",
        ),
        ({"redis_url": "redis://h/zero"}, "JOBS_REDIS_URL: Value error, the database"),
        (
            {"redis_url": "rediss://h/0", "redis_ssl_ca_certs": "/no/such/ca.pem"},
            "JOBS_REDIS_SSL_CA_CERTS: Path does not point to a file",
        ),
    ],
)
def test_bad_redis_settings_are_one_line_naming_the_variables(
    fields: dict[str, object], message: str
) -> None:
    error = error_of(**fields)
    assert error.startswith(f"invalid settings: {message}"), error
    assert "\n" not in error


def test_the_api_pool_has_a_maximum_and_waits_for_a_free_connection() -> None:
    pool = create_arq(Settings(redis_timeout_s=2.5)).connection_pool
    assert isinstance(pool, BlockingConnectionPool)
    assert (pool.max_connections, pool.timeout) == (100, 2.5)  # JOBS_REDIS_MAX_CONNECTIONS' default
    assert create_arq(Settings(redis_max_connections=7)).connection_pool.max_connections == 7

    sentinel = create_arq(
        Settings(redis_sentinels="s1", redis_sentinel_master="mymaster", redis_max_connections=7)
    ).connection_pool
    assert isinstance(sentinel, SentinelPool) and isinstance(sentinel, BlockingConnectionPool)
    assert (sentinel.max_connections, sentinel.timeout, sentinel.service_name) == (7, 5.0, "mymaster")

    # the workers' ARQ pool has none, as ARQ's own
    assert redis_settings(Settings(redis_max_connections=7)).max_connections is None
    worker = redis_settings(
        Settings(redis_sentinels="s1", redis_sentinel_master="m", redis_max_connections=7)
    )
    assert isinstance(worker, _arq.OwnPoolSettings) and worker.open_pool is not None
    own = worker.open_pool().connection_pool
    assert not isinstance(own, BlockingConnectionPool) and own.max_connections == 2**31


# the redis-py internals QuickPack relies on: the connection's `encoder` and `_buffer_cutoff`, and
# pipelines packing each command with `pack_command`
@pytest.mark.parametrize(
    "args",
    [
        (
            "EVALSHA",
            "a" * 40,
            2,
            "k:1",
            "k:2",
            "",
            0,
            -7,
            2.5,
            1_800_000_000_000,
            b"raw\x00bytes",
            "é ü 日本",
        ),
        ("SCRIPT LOAD", "return 1"),
        (b"CLIENT SETNAME", "name"),
        ("SET", "key", "v" * 7000, "PX", 10),  # a value over the buffer cutoff goes as a chunk of its own
        ("SET", "key", memoryview(b"view"), "EX", 1),
        ("PING",),
    ],
)
def test_quick_pack_sends_the_bytes_redis_py_sends(args: tuple[Any, ...]) -> None:
    plain, quick = Connection(), quick_packing(Connection)()
    assert quick._buffer_cutoff == plain._buffer_cutoff == 6000 and isinstance(quick.encoder, Encoder)
    packed = quick.pack_command(*args)
    assert b"".join(packed) == b"".join(plain.pack_command(*args))
    # large values and memoryviews are chunks of their own, not copied into the command
    apart = [arg for arg in args if isinstance(arg, memoryview) or (isinstance(arg, str) and len(arg) > 6000)]
    assert [chunk for chunk in packed if len(chunk) > 6000 or isinstance(chunk, memoryview)] == [
        arg.encode() if isinstance(arg, str) else arg for arg in apart
    ]
    commands = [args, ("GET", "k")]
    assert b"".join(quick.pack_commands(commands)) == b"".join(plain.pack_commands(commands))


def test_quick_pack_refuses_what_redis_py_refuses() -> None:
    quick = quick_packing(Connection)()
    with pytest.raises(DataError):
        quick.pack_command("SET", "k", True)
    with pytest.raises(DataError):
        quick.pack_command("SET", "k", None)


def test_every_pool_packs_with_quick_pack(files: dict[str, str]) -> None:
    plain = connection_pool(redis_options(Settings(_env_file=None)), socket_timeout=1)  # type: ignore[call-arg]
    assert issubclass(plain.connection_class, QuickPack) and issubclass(plain.connection_class, Connection)
    tls = Settings(_env_file=None, redis_url=f"rediss://h:1/0?ssl_ca_certs={files['ca.pem']}")  # type: ignore[call-arg]
    pool = connection_pool(redis_options(tls), socket_timeout=1, max_connections=2)
    assert issubclass(pool.connection_class, QuickPack) and issubclass(pool.connection_class, SSLConnection)
    sentinel = Settings(  # type: ignore[call-arg]
        _env_file=None, redis_sentinels="127.0.0.1:1", redis_sentinel_master="mymaster"
    )
    managed = connection_pool(redis_options(sentinel), socket_timeout=1)
    assert issubclass(managed.connection_class, QuickPack)
    assert issubclass(managed.connection_class, SentinelManagedConnection)
    assert isinstance(create_arq(Settings(_env_file=None)).connection_pool.make_connection(), QuickPack)  # type: ignore[call-arg]
