"""How every side reaches Redis: `redis_options()` reads the Settings once into the options the API,
the CLI and the workers all connect with, and `create_arq()` is the pooled ArqRedis the API, the CLI
and the benchmarks enqueue and read through (the workers' ARQ settings: arq_jobs._worker.settings).

A rediss:// URL's TLS options come from `JOBS_REDIS_SSL_*` where set, else from the URL's query.
With `JOBS_REDIS_SENTINELS` the primary is found through the Sentinels (and found again after a
failover); the URL still gives the database, the user, the password and TLS, which apply to the
Sentinels' connections too, except the password (`JOBS_REDIS_SENTINEL_PASSWORD`).

The API's pool (and the CLI's, JobClient.connect's) opens at most `JOBS_REDIS_MAX_CONNECTIONS`
connections: a request finding all of them in use waits for one up to `JOBS_REDIS_TIMEOUT_S`, then
fails with redis-py's ConnectionError (503 `redis_unavailable`). The workers' ARQ pool has no maximum,
as ARQ's own.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from arq.connections import ArqRedis
from redis._parsers.encoders import Encoder
from redis.asyncio import BlockingConnectionPool, ConnectionPool, SSLConnection
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool

from arq_jobs._config import REDIS_TLS_OPTIONS, Settings
from arq_jobs._keys import Keys
from arq_jobs._serializer import dumps, loads
from arq_jobs._transactions import CoalescingArqRedis


@dataclass(frozen=True)
class RedisOptions:
    """Where Redis is and how to log in to it, the same for the API, the CLI and the workers."""

    host: str
    port: int
    db: int
    username: str | None
    password: str | None
    tls: dict[str, str] | None  # ssl_ca_certs, ssl_certfile, ssl_keyfile, ssl_cert_reqs; None: no TLS
    timeout_s: float
    sentinels: tuple[tuple[str, int], ...] = ()
    sentinel_master: str | None = None
    sentinel_password: str | None = None

    def login(self) -> dict[str, Any]:
        """redis-py connection keywords for the primary, but its address and socket timeout."""
        return {
            "db": self.db,
            "username": self.username,
            "password": self.password,
            "socket_connect_timeout": self.timeout_s,
            **(self.tls or {}),
        }

    def sentinel_login(self) -> dict[str, Any]:
        """redis-py connection keywords for the Sentinels (TLS like the primary, their own password)."""
        tls = {"ssl": True, **self.tls} if self.tls is not None else {}
        return {
            "password": self.sentinel_password,
            "socket_connect_timeout": self.timeout_s,
            "socket_timeout": self.timeout_s,
            **tls,
        }


def redis_options(settings: Settings) -> RedisOptions:
    """The connection options of `settings` (`JOBS_REDIS_SSL_*` over the URL's query)."""
    url = settings.redis_url
    query = dict(url.query_params())
    tls = None
    if url.scheme == "rediss":
        tls = {"ssl_cert_reqs": "required"}
        for name in REDIS_TLS_OPTIONS:
            chosen = getattr(settings, f"redis_{name}")
            if chosen is not None or name in query:
                tls[name] = str(chosen) if chosen is not None else query[name]
    sentinel_password = settings.redis_sentinel_password
    return RedisOptions(
        host=url.host or "localhost",
        port=url.port or 6379,
        db=int(query.get("db") or (url.path or "/0").strip("/") or 0),
        username=unquote(url.username) if url.username else None,
        password=unquote(url.password) if url.password else None,
        tls=tls,
        timeout_s=settings.redis_timeout_s,
        sentinels=settings.redis_sentinels,
        sentinel_master=settings.redis_sentinel_master,
        sentinel_password=sentinel_password.get_secret_value() if sentinel_password else None,
    )


class QuickCheck:
    """A pool that checks the connection it hands out by looking, not reading: redis-py 5.3's pool
    (`ConnectionPool.ensure_connection`) tries a non-blocking read on every connection it hands out
    (`can_read_destructive`: a 0-second timeout around a socket read), which costs a busy worker
    about a tenth of its CPU per job. A connection is handed out as it is when it is connected, its
    stream has not seen the server close it (EOF) and holds no unread bytes; anything else gets
    redis-py's full check (and a reconnect). A reply left unread in the parser does not happen:
    redis-py disconnects a connection whose read was interrupted (`read_response`, any exception).
    redis-py internals this reads (tests/unit/test_connection.py names them): the connection's
    `_reader` (an asyncio.StreamReader, None when disconnected) and the reader's `_buffer`, which
    redis-py's own `_socket_is_empty` reads too. Its connections pack commands with QuickPack."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        setattr(self, "connection_class", quick_packing(getattr(self, "connection_class")))  # noqa: B009, B010

    async def ensure_connection(self, connection: AbstractConnection) -> None:
        reader: asyncio.StreamReader | None = getattr(connection, "_reader", None)
        if reader is not None and connection.is_connected and not reader.at_eof() and not reader._buffer:  # type: ignore[attr-defined]
            return
        await super().ensure_connection(connection)  # type: ignore[misc]


class QuickPack:
    """A connection whose commands are packed without redis-py 5.3's per-argument concatenation:
    its `pack_command` grows one bytes object an argument at a time (a join per argument), which costs
    a busy worker about a fifth of its CPU (the scripts it calls take 20 to 40 arguments). This packs
    each argument with one `%` format and joins once, for the same bytes: an argument's encoding is
    the connection's encoder's, and large values and memoryviews go as chunks of their own, as
    redis-py sends them. redis-py internals this relies on (tests/unit/test_connection.py names
    them): the connection's `encoder` and `_buffer_cutoff`, and that `pack_commands` (pipelines)
    packs each command with `pack_command`."""

    encoder: Encoder
    _buffer_cutoff: int

    def pack_command(self, *args: Any) -> list[bytes | memoryview]:
        first = args[0]
        assert not isinstance(first, float)
        if isinstance(first, str):
            args = (*first.encode().split(), *args[1:])
        elif b" " in first:
            args = (*first.split(), *args[1:])
        encoder = self.encoder
        encoding, errors, cutoff = encoder.encoding, encoder.encoding_errors, self._buffer_cutoff
        output: list[bytes | memoryview] = []
        pieces = [b"*%d\r\n" % len(args)]
        for arg in args:
            kind = type(arg)
            if kind is str:
                value = arg.encode(encoding, errors)
            elif kind is bytes:
                value = arg
            else:
                value = encoder.encode(arg)  # type: ignore[no-untyped-call]
            if len(value) > cutoff or isinstance(value, memoryview):
                pieces.append(b"$%d\r\n" % len(value))
                output.append(b"".join(pieces))
                output.append(value)
                pieces = [b"\r\n"]
            else:
                pieces.append(b"$%d\r\n%b\r\n" % (len(value), value))
        output.append(b"".join(pieces))
        return output


PACKING: dict[type, type] = {}


def quick_packing(connection_class: type) -> type:
    """`connection_class` with QuickPack's `pack_command` (made once per class)."""
    if connection_class not in PACKING:
        name = connection_class.__name__
        PACKING[connection_class] = type(name, (QuickPack, connection_class), {"__module__": __name__})
    return PACKING[connection_class]


class Pool(QuickCheck, ConnectionPool):
    """redis-py's ConnectionPool with the QuickCheck."""


class BlockingPool(QuickCheck, BlockingConnectionPool):
    """redis-py's BlockingConnectionPool with the QuickCheck."""


class SentinelPool(QuickCheck, SentinelConnectionPool):
    """A pool of connections to the primary the Sentinels name; closing it closes theirs too."""

    async def disconnect(self, inuse_connections: bool = True) -> None:
        await super().disconnect(inuse_connections)
        if inuse_connections:  # a full close, not a switch to a new primary
            await asyncio.gather(*(sentinel.aclose() for sentinel in self.sentinel_manager.sentinels))


class BlockingSentinelPool(SentinelPool, BlockingConnectionPool):
    """A SentinelPool with a maximum: a request finding every connection in use waits for one (as
    BlockingConnectionPool does), up to its `timeout`."""


def connection_pool(
    options: RedisOptions, *, socket_timeout: float | None, max_connections: int | None = None
) -> ConnectionPool:
    """A pool of connections to the primary: the one at the URL's address, or the one the Sentinels
    name at each new connection. With `max_connections`, at most that many: one more waits for a free
    one up to the connect timeout, then fails (ConnectionError "No connection available.")."""
    login = {**options.login(), "socket_timeout": socket_timeout}
    if max_connections is not None:
        login |= {"max_connections": max_connections, "timeout": options.timeout_s}
    if options.sentinel_master is not None:
        sentinels = Sentinel(options.sentinels, sentinel_kwargs=options.sentinel_login())  # type: ignore[no-untyped-call]
        ssl = options.tls is not None
        kind = SentinelPool if max_connections is None else BlockingSentinelPool
        return kind(options.sentinel_master, sentinels, ssl=ssl, **login)
    if options.tls is not None:
        login["connection_class"] = SSLConnection
    if max_connections is None:
        return Pool(host=options.host, port=options.port, **login)
    return BlockingPool(host=options.host, port=options.port, **login)


def open_arq(
    options: RedisOptions,
    *,
    socket_timeout: float | None,
    max_connections: int | None = None,
    coalesce: bool = False,
    **arq: Any,
) -> ArqRedis:
    """An ArqRedis that owns its pool (closing it closes the connections); `arq` are ArqRedis options.
    With `coalesce`, its transactions begun in one loop iteration share one round trip (a worker's
    pool: arq_jobs._transactions)."""
    pool = connection_pool(options, socket_timeout=socket_timeout, max_connections=max_connections)
    redis = (CoalescingArqRedis if coalesce else ArqRedis)(pool, **arq)
    redis.auto_close_connection_pool = True
    return redis


def create_arq(settings: Settings) -> ArqRedis:
    """A pooled ArqRedis (at most `redis_max_connections` connections) with our JSON serializer; it
    connects on first use, so the app starts even while Redis is down (and answers 503 until it is
    back)."""
    return open_arq(
        redis_options(settings),
        socket_timeout=settings.redis_timeout_s,
        max_connections=settings.redis_max_connections,
        job_serializer=dumps,
        job_deserializer=loads,
        default_queue_name=Keys(settings.key_prefix).queue(settings.queue_name),
        expires_extra_ms=settings.job_expires_s * 1000,
    )
