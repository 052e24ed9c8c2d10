"""Many event streams on one real API process (`python -m app` under uvicorn, real Redis): they share one
reader connection, the process serves at most JOBS_SSE_MAX_STREAMS (default 1,000) of them and refuses
the next with 503 while its other routes keep answering, and a stream that closes frees its place.

The streams are raw sockets (an HTTP/1.1 GET read up to its first SSE frame): lighter than 1,000 httpx
streams on a 2-core machine that also runs the API."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
import redis

from .conftest import Service, delete_prefix, enqueue_job, http_ok, service_env, start_api

OPENING = 25  # streams opened at once


@pytest.fixture
def prefix(redis_url: str, key_prefix: str) -> Iterator[str]:
    name = f"{key_prefix}-hub-{uuid.uuid4().hex[:8]}"
    yield name
    delete_prefix(redis_url, name)


@pytest.fixture
def api(redis_url: str, prefix: str, tmp_path: Path) -> Iterator[tuple[Service, str]]:
    service, base = start_api(service_env(redis_url, prefix), tmp_path)
    try:
        service.wait_until(http_ok(f"{base}/health/ready"))
        yield service, base
    finally:
        service.stop()


@dataclass
class RawStream:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    head: bytes  # status line and headers
    body: bytes  # what was read of the (chunked) body: at least the first frame

    async def read_to_end(self, timeout_s: float = 10) -> bytes:
        """The rest of the body, up to the last chunk (uvicorn keeps the connection open)."""
        async with asyncio.timeout(timeout_s):
            while not self.body.endswith(b"0\r\n\r\n"):
                self.body += await self.reader.read(65536)
        return self.body

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


async def open_stream(base: str, job_id: str) -> RawStream:
    """GET /jobs/{job_id}/events, read up to the end of its first frame."""
    url = urlsplit(base)
    assert url.hostname == "127.0.0.1" and url.port is not None
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    stream = RawStream(reader, writer, b"", b"")
    try:
        writer.write(f"GET /jobs/{job_id}/events HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode())
        await writer.drain()
        async with asyncio.timeout(20):
            stream.head = await reader.readuntil(b"\r\n\r\n")
            assert stream.head.startswith(b"HTTP/1.1 200 "), stream.head
            while b"\n\n" not in stream.body:
                stream.body += await reader.read(65536)
    except BaseException:
        await stream.close()
        raise
    return stream


async def open_streams(base: str, job_ids: list[str]) -> list[RawStream]:
    """A stream per id, `OPENING` at a time; each has answered 200 and sent its first frame."""
    gate = asyncio.Semaphore(OPENING)

    async def one(job_id: str) -> RawStream:
        async with gate:
            return await open_stream(base, job_id)

    return list(await asyncio.gather(*(one(job_id) for job_id in job_ids)))


@dataclass
class RedisConnections:
    total: int  # the API process's established TCP connections to Redis
    names: list[str]  # their CLIENT LIST names ("" if unnamed)
    commands: list[str]  # and the last command of each


def redis_connections(api: Service, redis_url: str, client: redis.Redis) -> RedisConnections:
    port = urlsplit(redis_url).port or 6379
    ours = {
        c.laddr.port
        for c in psutil.Process(api.process.pid).net_connections(kind="tcp")
        if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
    }
    clients: list[dict[str, str]] = client.client_list()  # type: ignore[assignment]
    listed = [c for c in clients if int(c["addr"].rsplit(":", 1)[1]) in ours]
    return RedisConnections(len(ours), [c["name"] for c in listed], [c["cmd"] for c in listed])


async def close_all(streams: list[RawStream]) -> None:
    await asyncio.gather(*(stream.close() for stream in streams), return_exceptions=True)


async def test_200_streams_share_one_reader_and_a_few_pooled_connections(
    api: tuple[Service, str], redis_url: str, redis_client: redis.Redis, prefix: str
) -> None:
    service, base = api
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        jobs = [(await enqueue_job(http, "noop", {"value": n}, delay=3600))["job_id"] for n in range(50)]
        streams = await open_streams(base, [job_id for job_id in jobs for _ in range(4)])
        try:
            assert all(b"event: scheduled\ndata: " in stream.body for stream in streams)
            await asyncio.sleep(1.5)  # the reader's XREAD in flight includes every stream by now
            found = redis_connections(service, redis_url, redis_client)
            print(f"\n200 open streams on 50 jobs: the API holds {found.total} Redis connections: {found}")
            # one named reader (blocked in XREAD on all 50 streams); the rest is the pool, which grew
            # to about the number of streams opened at once, and no further: not one per stream
            assert found.names.count(f"arq-jobs-events:{prefix}") == 1
            assert found.commands[found.names.index(f"arq-jobs-events:{prefix}")] == "xread"
            assert found.total <= OPENING + 5, found

            # every stream of a job gets its events from the one reader, and ends with the job
            assert (await http.delete(f"/jobs/{jobs[0]}")).status_code == 200
            for stream in streams[:4]:
                assert b"event: cancelled\ndata: " in await stream.read_to_end()
            assert (await http.get("/health/ready")).status_code == 200
        finally:
            await close_all(streams)


async def test_the_1001st_stream_is_refused_while_the_api_keeps_answering(
    api: tuple[Service, str], redis_url: str, redis_client: redis.Redis, prefix: str
) -> None:
    service, base = api
    limits = httpx.Limits(max_connections=20)
    async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits) as http:
        job_id = (await enqueue_job(http, "noop", {"value": 1}, delay=3600))["job_id"]
        started = time.monotonic()
        streams = await open_streams(base, [job_id] * 1000)  # JOBS_SSE_MAX_STREAMS' default
        opened_in = time.monotonic() - started
        try:
            assert all(b"event: scheduled\ndata: " in stream.body for stream in streams)
            refused = await http.get(f"/jobs/{job_id}/events")
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "5"
            assert refused.json() == {
                "error": "too_many_streams",
                "message": "this API process already serves its limit of 1000 event streams "
                "(JOBS_SSE_MAX_STREAMS); try again in 5 s",
                "limit": 1000,
            }
            for path in (f"/jobs/{job_id}", "/health/ready"):
                asked = time.monotonic()
                answer = await http.get(path)
                assert answer.status_code == 200, answer.text
                assert time.monotonic() - asked < 1.0, path
            assert (await http.get(f"/jobs/{job_id}")).json()["status"] == "scheduled"
            found = redis_connections(service, redis_url, redis_client)
            print(f"\n1000 streams opened in {opened_in:.1f}s; the API holds {found.total} Redis connections")
            assert found.names.count(f"arq-jobs-events:{prefix}") == 1 and found.total <= OPENING + 5

            # ten clients leave: their places go to new streams (and only ten)
            await close_all(streams[:10])
            del streams[:10]
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    streams.append(await open_stream(base, job_id))
                except AssertionError:  # not freed yet: 503
                    await asyncio.sleep(0.1)
                    continue
                if len(streams) == 1000:
                    break
            assert len(streams) == 1000
            assert (await http.get(f"/jobs/{job_id}/events")).status_code == 503
        finally:
            await close_all(streams)
