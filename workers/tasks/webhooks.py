"""Outgoing webhooks, sent with the worker's shared HTTP client."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Annotated

import httpx
from pydantic import AnyHttpUrl, BaseModel, Field, JsonValue, StringConstraints

from arq_jobs import JobContext, PermanentError, RetryPolicy, TaskError, TaskInput, TransientError, task


class WebhookError(TaskError):
    """A webhook target answered with a status that is not 2xx."""

    code = "webhook_error"

    def __init__(self, url: str, status_code: int) -> None:
        super().__init__(f"webhook target {url} answered HTTP {status_code}")
        self.url = url
        self.status_code = status_code


class WebhookRejectedError(WebhookError, PermanentError):
    """A webhook target refused the request (4xx other than 429): retrying cannot help."""

    code = "webhook_rejected"


class WebhookUnavailableError(WebhookError, TransientError):
    """A webhook target is failing or throttling (5xx, 429): retried, after its Retry-After if given."""

    code = "webhook_unavailable"

    def __init__(self, url: str, status_code: int, retry_after_s: float | None = None) -> None:
        WebhookError.__init__(self, url, status_code)
        self.retry_after_s = retry_after_s


HeaderName = Annotated[str, StringConstraints(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", max_length=256)]
HeaderValue = Annotated[str, StringConstraints(pattern=r"^[\x20-\x7e\t]*$", max_length=8192)]


class WebhookInput(TaskInput):
    url: AnyHttpUrl = Field(description="http(s) URL to POST to.")
    payload: JsonValue = Field(description="JSON body to send.")
    headers: dict[HeaderName, HeaderValue] = Field(
        default_factory=dict, description="Extra request headers (printable ASCII)."
    )


class WebhookResult(BaseModel):
    status_code: int
    elapsed_ms: float


def retry_after_s(response: httpx.Response) -> float | None:
    """A Retry-After header in seconds (delta-seconds or an HTTP date), None when absent or bad."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# retried: connection errors and timeouts (httpx.TransportError), 5xx and 429 (WebhookUnavailableError,
# after Retry-After when given); failed at once: other 4xx and 3xx (WebhookRejectedError)
WEBHOOK_RETRY = RetryPolicy(
    max_attempts=5, base_s=1.0, factor=2.0, cap_s=60.0, retry_on=(httpx.TransportError,)
)


@task(timeout_s=30, retry=WEBHOOK_RETRY)
async def send_webhook(ctx: JobContext, data: WebhookInput) -> WebhookResult:
    """POST a JSON body to a URL; any 2xx answer is success.

    Retries on connection errors, timeouts, 5xx and 429 (honouring Retry-After); fails at once on any
    other answer."""
    started = time.perf_counter()
    response = await ctx.http.post(str(data.url), json=data.payload, headers=data.headers)
    elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
    if response.status_code == 429 or response.status_code >= 500:
        raise WebhookUnavailableError(str(data.url), response.status_code, retry_after_s(response))
    if not response.is_success:
        raise WebhookRejectedError(str(data.url), response.status_code)
    return WebhookResult(status_code=response.status_code, elapsed_ms=elapsed_ms)
