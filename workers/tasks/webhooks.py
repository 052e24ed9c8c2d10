"""Outgoing webhooks, sent with the worker's shared HTTP client."""

from __future__ import annotations

import time

from pydantic import AnyHttpUrl, BaseModel, Field, JsonValue

from jobcore.context import JobContext
from jobcore.errors import WebhookError
from jobcore.registry import task


class WebhookInput(BaseModel):
    url: AnyHttpUrl = Field(description="http(s) URL to POST to.")
    payload: JsonValue = Field(description="JSON body to send.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")


class WebhookResult(BaseModel):
    status_code: int
    elapsed_ms: float


@task(timeout_s=30)
async def send_webhook(ctx: JobContext, data: WebhookInput) -> WebhookResult:
    """POST a JSON body to a URL; any 2xx answer is success."""
    started = time.perf_counter()
    response = await ctx.http.post(str(data.url), json=data.payload, headers=data.headers)
    elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
    if not response.is_success:
        raise WebhookError(str(data.url), response.status_code)
    return WebhookResult(status_code=response.status_code, elapsed_ms=elapsed_ms)
