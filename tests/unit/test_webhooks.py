from __future__ import annotations

import json

import httpx
import pytest
from arq.connections import ArqRedis

from arq_jobs._config import Settings
from workers.tasks.webhooks import WebhookError, WebhookInput, WebhookResult, send_webhook

from .conftest import job_context


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
