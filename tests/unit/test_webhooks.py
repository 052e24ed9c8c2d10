from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpcore
import httpx
import pytest
from arq.connections import ArqRedis

from app.main import create_app as create_reference_app
from arq_jobs import PermanentError
from arq_jobs._client import JobClient
from arq_jobs._config import Settings
from arq_jobs._jobs.states import JobState
from arq_jobs._jobs.status import JobStatus
from arq_jobs._keys import Keys
from arq_jobs._netguard import Allowlist, GuardedBackend, GuardedTransport
from arq_jobs._serializer import dumps, loads
from arq_jobs.testing import JobsHarness
from tests.listener import Listener
from workers.tasks.webhooks import (
    WebhookBlockedError,
    WebhookError,
    WebhookInput,
    WebhookRequestError,
    WebhookResult,
    send_webhook,
)

from .conftest import RunWorker, job_context, make_settings


def target(status: int, seen: list[httpx.Request]) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json={"ok": status < 300})

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


async def test_posts_the_json_body_and_headers(arq_redis: ArqRedis, settings: Settings) -> None:
    seen: list[httpx.Request] = []
    async with target(201, seen) as http:
        ctx = job_context(arq_redis, settings, http)
        data = WebhookInput(
            url="https://hooks.example/in", payload={"order": 7, "items": [1, 2]}, headers={"x-sig": "abc"}
        )  # type: ignore[arg-type]
        result = await send_webhook(ctx, data)
    assert isinstance(result, WebhookResult)
    assert result.status_code == 201
    assert result.elapsed_ms >= 0
    assert len(seen) == 1
    request = seen[0]
    assert (request.method, str(request.url)) == ("POST", "https://hooks.example/in")
    assert json.loads(request.content) == {"order": 7, "items": [1, 2]}
    assert request.headers["x-sig"] == "abc"
    assert request.headers["content-type"] == "application/json"


@pytest.mark.parametrize("status", [301, 404, 500])
async def test_non_2xx_fails_with_the_status(arq_redis: ArqRedis, settings: Settings, status: int) -> None:
    async with target(status, []) as http:
        ctx = job_context(arq_redis, settings, http)
        with pytest.raises(WebhookError) as failed:
            await send_webhook(ctx, WebhookInput(url="http://t.example/x", payload=None))  # type: ignore[arg-type]
    assert failed.value.status_code == status
    assert str(failed.value) == f"webhook target http://t.example/x answered HTTP {status}"


def test_only_http_urls_are_accepted() -> None:
    with pytest.raises(ValueError, match="URL scheme should be 'http' or 'https'"):
        WebhookInput(url="ftp://x.example/", payload={})  # type: ignore[arg-type]


def hook(url: str, payload: Any) -> WebhookInput:
    return WebhookInput(url=url, payload=payload)  # type: ignore[arg-type]


async def test_a_null_payload_is_sent_as_json_null(arq_redis: ArqRedis, settings: Settings) -> None:
    seen: list[httpx.Request] = []
    async with target(200, seen) as http:
        await send_webhook(job_context(arq_redis, settings, http), hook("http://t.example/", None))
    assert [(r.content, r.headers["content-type"], r.headers["content-length"]) for r in seen] == [
        (b"null", "application/json", "4")
    ]


async def test_a_content_type_given_in_headers_is_kept(arq_redis: ArqRedis, settings: Settings) -> None:
    seen: list[httpx.Request] = []
    data = WebhookInput(
        url="http://t.example/", payload={"a": "é"}, headers={"Content-Type": "application/cloudevents+json"}
    )  # type: ignore[arg-type]
    async with target(200, seen) as http:
        await send_webhook(job_context(arq_redis, settings, http), data)
    assert [(r.content, r.headers.get_list("content-type")) for r in seen] == [
        ('{"a":"é"}'.encode(), ["application/cloudevents+json"])
    ]


class Body(httpx.AsyncByteStream):
    """An answer's body in `pieces` chunks of 4 bytes, counting how many were read."""

    def __init__(self, pieces: int) -> None:
        self.pieces = pieces
        self.read = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.pieces):
            self.read += 1
            yield b"abcd"

    async def aclose(self) -> None:
        self.closed = True


async def test_reads_at_most_the_configured_bytes_of_the_answer(arq_redis: ArqRedis) -> None:
    body = Body(pieces=1000)
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(200, stream=body)))
    settings = make_settings(webhook_max_response_bytes=10)
    async with http:
        result = await send_webhook(job_context(arq_redis, settings, http), hook("http://t.example/", {}))
    assert result.status_code == 200
    assert (body.read, body.closed) == (3, True)  # 12 bytes: the first read that reached 10


class NoConnection(httpcore.AsyncNetworkBackend):
    """A network backend that records the connections asked for and makes none."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []

    async def connect_tcp(
        self, host: str, port: int, *args: Any, **kwargs: Any
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        raise httpcore.ConnectError("the test connects nowhere")


async def test_a_blocked_host_fails_with_webhook_blocked_error(
    arq_redis: ArqRedis, settings: Settings
) -> None:
    nowhere = NoConnection()
    guarded = GuardedTransport(GuardedBackend(Allowlist(), backend=nowhere))
    async with httpx.AsyncClient(transport=guarded) as http:
        with pytest.raises(WebhookBlockedError) as blocked:
            await send_webhook(job_context(arq_redis, settings, http), hook("http://localhost:8080/in", {}))
    assert str(blocked.value) == (
        "webhook host localhost is blocked: it resolves to 127.0.0.1 (loopback address); "
        "JOBS_WEBHOOK_ALLOWED_HOSTS opens exceptions"
    )
    assert (blocked.value.code, blocked.value.port) == ("webhook_blocked", 8080)
    assert isinstance(blocked.value, PermanentError)
    assert send_webhook.retry.should_retry(blocked.value, 1) is False
    assert nowhere.connects == []


@pytest.mark.parametrize(
    "header",
    [
        "Host",
        "host",
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "proxy-connection",
        "TE",
        "Trailer",
        "UPGRADE",
    ],
)
async def test_headers_the_sender_owns_are_refused_naming_them(
    client: httpx.AsyncClient, arq_redis: ArqRedis, header: str
) -> None:
    body = {"url": "https://hooks.example/in", "payload": {}, "headers": {"x-sig": "abc", header: "x"}}
    response = await client.post("/jobs/send_webhook", json=body)
    assert response.status_code == 422
    why = {
        "host": "the URL gives the host",
        "content-length": "it is set from the body",
        "transfer-encoding": "the body's framing is set by the sender",
    }.get(header.lower(), "a hop-by-hop header, which the sender sets per connection")
    msg = f"header '{header}' cannot be set: {why}"
    assert response.json() == {
        "error": "validation_error",
        "message": f"invalid request for task 'send_webhook': body.headers.{header}.[key]: {msg}",
        "task": "send_webhook",
        "detail": [{"loc": ["body", "headers", header, "[key]"], "msg": msg, "type": "header_not_allowed"}],
    }
    assert await arq_redis.zcard("unit:queue:default") == 0


async def run_webhook(listener: Listener, allowed_hosts: tuple[str, ...]) -> JobStatus:
    """One send_webhook job with a null payload to `listener`, run by the real worker code (whose start-up
    builds the guarded client) with these exceptions; the job's status."""
    settings = make_settings(webhook_allowed_hosts=allowed_hosts)
    async with JobsHarness(create_reference_app(settings)) as harness:
        job = await harness.jobs.enqueue(send_webhook, hook(listener.url, None))
        assert await harness.drain() == [job.job_id]
        status = await harness.jobs.status(job.job_id)
        if status.dead_lettered:
            letter = await harness.jobs.dead_letters.get(job.job_id)
            assert (letter.reason, letter.attempts, letter.error.type) == (
                "permanent_error",
                1,
                "WebhookBlockedError",
            )
        return status


async def test_a_blocked_webhook_fails_at_once_and_reaches_nothing_until_allowed() -> None:
    async with Listener() as listener:
        blocked = await run_webhook(listener, ())
        assert listener.connections == 0
        sent = await run_webhook(listener, (f"127.0.0.1:{listener.port}",))
    assert (blocked.status, blocked.attempt, blocked.dead_lettered) == (JobState.FAILED, 1, True)
    assert blocked.error is not None
    message = (
        "webhook host 127.0.0.1 is blocked: loopback address; JOBS_WEBHOOK_ALLOWED_HOSTS opens exceptions"
    )
    assert (blocked.error.type, blocked.error.message) == ("WebhookBlockedError", message)
    assert (sent.status, sent.attempt, sent.dead_lettered) == (JobState.SUCCEEDED, 1, False)
    assert listener.connections == 1
    [arrived] = listener.received
    assert (arrived.request_line, arrived.body) == ("POST / HTTP/1.1", b"null")
    assert arrived.headers["content-type"] == "application/json"
    assert arrived.headers["host"] == f"127.0.0.1:{listener.port}"


# --- header values HTTP refuses (h11 quotes a refused value in its error: it must never be shown) ---------

LEAKY = "SUPERSECRET-TOKEN"


@pytest.mark.parametrize("value", ["a", "Bearer x", "a \t b", "", "!~"])
def test_header_values_with_whitespace_only_between_visible_characters_are_accepted(value: str) -> None:
    data = WebhookInput.model_validate(
        {"url": "http://t.example/", "payload": None, "headers": {"X-A": value}}
    )
    assert data.headers == {"X-A": value}


@pytest.mark.parametrize(
    "value",
    [
        f"Bearer {LEAKY} ",
        f" Bearer {LEAKY}",
        f"Bearer {LEAKY}\t",
        f"\tBearer {LEAKY}",
        " ",
        f"Bearer {LEAKY}é",
    ],
)
async def test_a_header_value_http_refuses_is_refused_at_enqueue_without_being_echoed(
    client: httpx.AsyncClient, arq_redis: ArqRedis, value: str
) -> None:
    body = {"url": "https://hooks.example/in", "payload": {}, "headers": {"Authorization": value}}
    response = await client.post("/jobs/send_webhook", json=body)
    assert response.status_code == 422
    msg = "String should match pattern '^([\\x21-\\x7e]([\\x20-\\x7e\\t]*[\\x21-\\x7e])?)?$'"
    assert response.json() == {
        "error": "validation_error",
        "message": f"invalid request for task 'send_webhook': body.headers.Authorization: {msg}",
        "task": "send_webhook",
        "detail": [
            {"loc": ["body", "headers", "Authorization"], "msg": msg, "type": "string_pattern_mismatch"}
        ],
    }
    assert LEAKY not in response.text and "Bearer" not in response.text
    assert await arq_redis.zcard("unit:queue:default") == 0


async def test_a_header_h11_refuses_fails_at_once_naming_it_and_not_its_value(
    arq_redis: ArqRedis, settings: Settings
) -> None:
    async with Listener() as listener, httpx.AsyncClient() as http:
        # the input as a job stored before values were checked had it: h11 itself refuses the value
        headers = {"X-Sig": "abc", "Authorization": f"Bearer {LEAKY} "}
        data = WebhookInput.model_construct(url=f"{listener.url}/in", payload=None, headers=headers)  # type: ignore[arg-type]
        with pytest.raises(WebhookRequestError) as refused:
            await send_webhook(job_context(arq_redis, settings, http), data)
    assert str(refused.value) == (
        f"the request to webhook target {listener.url}/in could not be sent: "
        "HTTP does not allow the value of header(s) 'Authorization'"
    )
    assert refused.value.code == "webhook_invalid_request"
    assert (refused.value.__cause__, refused.value.__suppress_context__) == (None, True)
    assert isinstance(refused.value.__context__, httpx.LocalProtocolError)  # what the message replaces
    assert LEAKY in str(refused.value.__context__)
    assert send_webhook.retry.should_retry(refused.value, 1) is False
    assert listener.received == []


async def test_a_request_error_without_a_bad_value_is_still_permanent_and_quotes_nothing(
    arq_redis: ArqRedis, settings: Settings
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.LocalProtocolError(f"Illegal header value b'{LEAKY}'")

    data = WebhookInput(url="http://t.example/", payload=None, headers={"Authorization": LEAKY})  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        with pytest.raises(WebhookRequestError) as refused:
            await send_webhook(job_context(arq_redis, settings, http), data)
    assert str(refused.value) == (
        "the request to webhook target http://t.example/ could not be sent: HTTP does not allow one of its headers"
    )
    assert isinstance(refused.value, PermanentError)


async def test_a_job_queued_with_a_value_http_refuses_fails_at_once_without_quoting_it(
    job_client: JobClient, arq_redis: ArqRedis, run_worker: RunWorker, client: httpx.AsyncClient
) -> None:
    data = {"url": "https://hooks.example/in", "payload": {}, "headers": {"Authorization": LEAKY}}
    job = await job_client.enqueue(send_webhook, WebhookInput.model_validate(data))
    # as queued before values were checked (no JOBS_SECRETS_KEY here: the input is stored as given)
    stored = loads(await arq_redis.get(Keys.arq_job(job.job_id)) or b"null")
    stored["a"][0]["headers"]["Authorization"] = f"Bearer {LEAKY} "
    await arq_redis.set(Keys.arq_job(job.job_id), dumps(stored), keepttl=True)
    worker = await run_worker()
    assert (worker.jobs_retried, worker.jobs_failed) == (0, 1)
    msg = "String should match pattern '^([\\x21-\\x7e]([\\x20-\\x7e\\t]*[\\x21-\\x7e])?)?$'"
    message = f"invalid input for task 'send_webhook': headers.Authorization: {msg}"
    error = {"type": "TaskInputError", "message": message}
    status = (await client.get(f"/jobs/{job.job_id}")).json()
    assert (status["status"], status["attempt"], status["error"]) == ("failed", 1, error)
    letter = (await client.get(f"/dead-letters/{job.job_id}")).json()
    assert (letter["reason"], letter["attempts"], letter["input"]["headers"]) == (
        "permanent_error",
        1,
        {"Authorization": "***"},
    )
    assert letter["error"]["message"] == message and LEAKY not in letter["error"]["traceback"]
    failure = loads(await arq_redis.get(Keys.arq_result(job.job_id)) or b"null")["r"]["__exception__"]
    assert failure["message"] == message and LEAKY not in failure["traceback"]
