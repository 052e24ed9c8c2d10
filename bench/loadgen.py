"""An open-loop HTTP/1.1 load generator, run as its own process; prints one JSON object on stdout.

    python -m bench.loadgen post --url http://127.0.0.1:8000/jobs/noop --body '{}' --rate 1000 --duration 5
    python -m bench.loadgen post --url http://127.0.0.1:8000/jobs/noop/batch --body-file batch.json \
        --closed --connections 8 --duration 5 --count '"job_id"'   # as fast as 8 connections go
    python -m bench.loadgen poll --url http://127.0.0.1:8000/jobs/ --ids-file ids.txt --clients 20 \
        --interval 0.05 --terminal '"is_terminal":true'      # until SIGTERM (or --duration)

Open loop: request i is due at `start + i / rate` and is sent then whatever the answers so far (on
an idle keep-alive connection, else on a new one up to --max-connections, else as soon as one frees
up). Latency is measured from the time the request was *due*, not sent, so a server that falls behind
shows it in the latency (no coordinated omission). Requests still unanswered --grace seconds after the
last one was due count as errors ("timeout").

`post --closed`: closed loop instead, as fast as the server answers: each of --connections connections
sends its next request as soon as its last answer came, for --duration seconds (or --requests
requests); latency from each request's sending. --count TEXT adds how often TEXT occurs in the 2xx
answers (`"job_id"`: the jobs a batch enqueue accepted).

`poll` models --clients clients each asking for their job's status every --interval seconds (rate =
clients / interval): a client polls the next id of --ids-file, in order, once its job's answer
contains --terminal (or is a 404).

Output: target and achieved rate (2xx answers / max(duration, last 2xx answer - start)), counts of
2xx and of each error, latency p50/p99/max (ms) of the 2xx answers, how late the generator itself
dispatched requests (schedule_lag: its own overload shows there), its CPU use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from bench.stats import latency_summary, percentile

OnBody = Callable[[int, bytes], None]


@dataclass(slots=True)
class Request:
    due: float
    data: bytes
    on_body: OnBody | None = None


class Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, load: Load) -> None:
        self.load = load
        self.transport: asyncio.Transport | None = None
        self.current: Request | None = None
        self.buffer = bytearray()
        self.body_start = -1
        self.end = -1
        self.status = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport

    def send(self, request: Request) -> None:
        assert self.transport is not None
        self.current = request
        self.transport.write(request.data)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.end < 0:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = bytes(self.buffer[:head_end]).lower()
            at = head.find(b"\r\ncontent-length:")
            if at < 0 or not head.startswith(b"http/1.1 "):
                self.abort()
                return
            stop = head.find(b"\r\n", at + 2)
            self.status = int(head[9:12])
            self.body_start = head_end + 4
            self.end = self.body_start + int(head[at + 17 : stop if stop >= 0 else None])
        if len(self.buffer) < self.end:
            return
        body = bytes(self.buffer[self.body_start : self.end])
        del self.buffer[: self.end]
        self.end = -1
        request, self.current = self.current, None
        if request is not None:
            self.load.completed(self, request, self.status, body)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        request, self.current = self.current, None
        self.load.lost(self, request)


@dataclass
class Load:
    """Requests in flight over a pool of keep-alive connections, and what came back."""

    host: str
    port: int
    max_connections: int
    idle: list[Connection] = field(default_factory=list)
    waiting: deque[Request] = field(default_factory=deque)
    connections: int = 0
    most_connections: int = 0
    outstanding: int = 0
    ok: int = 0
    last_ok: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    schedule_lag_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    all_connections: set[Connection] = field(default_factory=set)
    count_token: bytes = b""  # counted in each 2xx body (`counted`) when set
    counted: int = 0
    freed: asyncio.Event = field(default_factory=asyncio.Event)  # set when a request ends

    def submit(self, request: Request, now: float) -> None:
        self.outstanding += 1
        self.schedule_lag_ms.append((now - request.due) * 1000)
        if self.idle:
            self.idle.pop().send(request)
            return
        self.waiting.append(request)
        if self.connections < self.max_connections:
            self.open()

    def open(self) -> None:
        self.connections += 1
        self.most_connections = max(self.most_connections, self.connections)
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(lambda: Connection(self), self.host, self.port)
        except OSError:
            self.connections -= 1
            if self.waiting and self.connections == 0:
                self.waiting.popleft()
                self.outstanding -= 1
                self.errors["connect"] += 1
            return
        self.all_connections.add(connection)
        self.release(connection)

    def release(self, connection: Connection) -> None:
        if self.waiting:
            connection.send(self.waiting.popleft())
        else:
            self.idle.append(connection)

    def completed(self, connection: Connection, request: Request, status: int, body: bytes) -> None:
        now = time.perf_counter()
        self.outstanding -= 1
        if 200 <= status < 300:
            self.ok += 1
            self.last_ok = now
            self.latencies_ms.append((now - request.due) * 1000)
            if self.count_token:
                self.counted += body.count(self.count_token)
        else:
            self.errors[str(status)] += 1
        if request.on_body is not None:
            request.on_body(status, body)
        self.freed.set()
        self.release(connection)

    def lost(self, connection: Connection, request: Request | None) -> None:
        self.connections -= 1
        self.all_connections.discard(connection)
        if connection in self.idle:
            self.idle.remove(connection)
        if request is not None:
            self.outstanding -= 1
            self.errors["connection"] += 1
            self.freed.set()
        if self.waiting and self.connections < self.max_connections:
            self.open()

    def close(self) -> None:
        for connection in list(self.all_connections):
            connection.abort()


async def run_schedule(
    load: Load, rate: float, make: Callable[[int], Request], total: int | None, stop: asyncio.Event
) -> tuple[float, int]:
    """Submit request i at `start + i / rate` until `total` were sent or `stop` is set; the start
    (perf_counter) and how many were sent."""
    start = time.perf_counter() + 0.01
    sent = 0
    while (total is None or sent < total) and not stop.is_set():
        now = time.perf_counter()
        while (total is None or sent < total) and start + sent / rate <= now:
            request = make(sent)
            request.due = start + sent / rate
            load.submit(request, now)
            sent += 1
        await asyncio.sleep(max(0.0, start + sent / rate - time.perf_counter()))
    return start, sent


async def run_closed(
    load: Load, data: bytes, concurrency: int, duration_s: float, total: int | None
) -> tuple[float, int]:
    """Keep `concurrency` requests in flight until `duration_s` passed or `total` were sent; the start
    (perf_counter) and how many were sent. Each request is due when it is sent."""
    start = time.perf_counter()
    end = start + duration_s
    sent = 0
    while (total is None or sent < total) and (now := time.perf_counter()) < end:
        while load.outstanding < concurrency and (total is None or sent < total):
            load.submit(Request(now, data), now)
            sent += 1
        load.freed.clear()
        try:
            await asyncio.wait_for(load.freed.wait(), max(0.0, end - time.perf_counter()))
        except TimeoutError:
            break
    return start, sent


async def settle(load: Load, grace_s: float) -> None:
    """Wait for answers to requests still in flight, up to `grace_s`; the rest are timeouts."""
    deadline = time.perf_counter() + grace_s
    while load.outstanding > 0 and time.perf_counter() < deadline:  # noqa: ASYNC110 (a counter, polled)
        await asyncio.sleep(0.005)
    if load.outstanding > 0:
        load.errors["timeout"] += load.outstanding
        load.outstanding = 0
    load.close()


def report(
    load: Load, rate: float | None, duration_s: float, start: float, sent: int, cpu_s: float
) -> dict[str, Any]:
    active_s = max(duration_s, (load.last_ok - start) if load.ok else 0.0)
    lag = load.schedule_lag_ms
    found: dict[str, Any] = {"counted": load.counted} if load.count_token else {}
    return {
        **found,
        "target_rps": rate,
        "duration_s": round(duration_s, 3),
        "sent": sent,
        "ok": load.ok,
        "errors": dict(load.errors),
        "error_count": sum(load.errors.values()),
        "achieved_rps": round(load.ok / active_s, 1) if active_s > 0 else 0.0,
        **{k: round(v, 2) for k, v in latency_summary(load.latencies_ms).items()},
        "schedule_lag_p99_ms": round(percentile(lag, 99), 2) if lag else None,
        "schedule_lag_max_ms": round(max(lag), 2) if lag else None,
        "connections": load.most_connections,
        "cpu_s": round(cpu_s, 2),
    }


def extra_headers(args: argparse.Namespace) -> str:
    """The `--header` options as request header lines (each ending in CRLF)."""
    lines = []
    for header in args.header:
        name, colon, value = header.partition(":")
        if not colon or not name.strip():
            raise SystemExit(f"loadgen: --header takes NAME:VALUE, got {header!r}")
        lines.append(f"{name.strip()}: {value.strip()}\r\n")
    return "".join(lines)


def parse_url(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise SystemExit(f"loadgen: only http:// URLs: {url}")
    return parts.hostname, parts.port or 80, parts.path or "/"


def request_body(args: argparse.Namespace) -> bytes:
    return Path(args.body_file).read_bytes() if args.body_file else str(args.body).encode()


async def post(args: argparse.Namespace) -> dict[str, Any]:
    host, port, path = parse_url(args.url)
    body = request_body(args)
    data = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra_headers(args)}"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    ).encode() + body
    closed = bool(args.closed)
    if not closed and args.rate is None:
        raise SystemExit("loadgen: post needs --rate (or --closed)")
    load = Load(host, port, args.connections if closed else args.max_connections)
    load.count_token = args.count.encode()
    for _ in range(min(args.connections, load.max_connections)):
        load.open()
    await asyncio.sleep(0.05)
    cpu = time.process_time()
    if closed:
        start, sent = await run_closed(load, data, args.connections, args.duration, args.requests)
        duration = min(args.duration, time.perf_counter() - start)
    else:
        total = round(args.rate * args.duration)
        if args.requests is not None:
            total = min(total, args.requests)
        schedule = await run_schedule(load, args.rate, lambda _: Request(0.0, data), total, asyncio.Event())
        (start, sent), duration = schedule, args.duration
    await settle(load, args.grace)
    found = report(load, args.rate, duration, start, sent, time.process_time() - cpu)
    return {**found, "mode": "closed" if closed else "open"}


def read_ids(path: str) -> list[str]:
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]


async def poll(args: argparse.Namespace) -> dict[str, Any]:
    host, port, path = parse_url(args.url)
    ids = read_ids(args.ids_file)
    if not ids:
        raise SystemExit("loadgen: no job ids")
    terminal = args.terminal.encode()
    cursor = args.clients
    current = [ids[k % len(ids)] for k in range(args.clients)]
    finished = 0

    def make(i: int) -> Request:
        client = i % args.clients
        job_id = current[client]

        def on_body(status: int, body: bytes) -> None:
            nonlocal cursor, finished
            if current[client] == job_id and (status == 404 or terminal in body):
                finished += 1
                current[client] = ids[cursor % len(ids)]
                cursor += 1

        data = f"GET {path}{job_id} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra_headers(args)}\r\n".encode()
        return Request(0.0, data, on_body)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    load = Load(host, port, args.max_connections)
    for _ in range(min(args.clients, args.max_connections)):
        load.open()
    await asyncio.sleep(0.05)
    print("ready", file=sys.stderr, flush=True)
    rate = args.clients / args.interval
    cpu = time.process_time()
    total = None if args.duration is None else round(rate * args.duration)
    start, sent = await run_schedule(load, rate, make, total, stop)
    duration = time.perf_counter() - start
    await settle(load, args.grace)
    return {
        **report(load, rate, duration, start, sent, time.process_time() - cpu),
        "clients": args.clients,
        "interval_s": args.interval,
        "jobs_seen_ended": finished,
    }


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.split("\n\n")[0])
    modes = main.add_subparsers(dest="mode", required=True)
    for mode in ("post", "poll"):
        sub = modes.add_parser(mode)
        sub.add_argument("--url", required=True, help="POST target; for poll, the prefix of each id")
        sub.add_argument("--max-connections", type=int, default=512)
        sub.add_argument("--grace", type=float, default=2.0, help="seconds to wait for late answers")
        sub.add_argument(
            "--header", action="append", default=[], metavar="NAME:VALUE", help="sent with each request"
        )
    post_mode = modes.choices["post"]
    post_mode.add_argument("--body", default="{}")
    post_mode.add_argument("--body-file", help="read the body from this file instead")
    post_mode.add_argument("--rate", type=float, help="requests per second (open loop)")
    post_mode.add_argument("--closed", action="store_true", help="closed loop: --connections in flight")
    post_mode.add_argument("--duration", type=float, required=True, help="seconds")
    post_mode.add_argument("--requests", type=int, help="stop after this many requests")
    post_mode.add_argument(
        "--connections", type=int, default=32, help="connections opened up front (closed: in flight)"
    )
    post_mode.add_argument("--count", default="", metavar="TEXT", help="count TEXT in the 2xx answers")
    poll_mode = modes.choices["poll"]
    poll_mode.add_argument("--ids-file", required=True, help="job ids, one per line")
    poll_mode.add_argument("--clients", type=int, default=20)
    poll_mode.add_argument("--interval", type=float, default=0.05, help="seconds between a client's polls")
    poll_mode.add_argument("--terminal", default='"is_terminal":true', help="marks a finished job's body")
    poll_mode.add_argument("--duration", type=float, default=None, help="stop after (default: SIGTERM)")
    return main


def main() -> None:
    args = parser().parse_args()
    run = post if args.mode == "post" else poll
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(args))
    else:
        result = uvloop.run(run(args))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
