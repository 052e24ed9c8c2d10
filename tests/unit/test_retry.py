from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest
from arq.connections import ArqRedis
from pydantic import BaseModel

from arq_jobs._config import Settings
from arq_jobs._errors import (
    JobCancelledError,
    PermanentError,
    SoftTimeLimitExceeded,
    TaskInputError,
    TimeLimitExceeded,
    TransientError,
    WorkerLostError,
)
from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import task
from arq_jobs._tasks.retry import MAX_RETRY_AFTER_S, RetryPolicy
from workers.tasks.webhooks import (
    WEBHOOK_RETRY,
    WebhookInput,
    WebhookRejectedError,
    WebhookUnavailableError,
    retry_after_s,
    send_webhook,
)

from .conftest import job_context


class Payload(BaseModel):
    n: int = 0


async def handler(ctx: JobContext, data: Payload) -> int:
    return data.n


class Throttled(Exception):
    """Not a TransientError, but carries a retry_after_s attribute anyway."""

    retry_after_s = 999.0


# --- backoff ceiling -------------------------------------------------------------------------------


def test_ceiling_doubles_per_attempt_up_to_the_cap() -> None:
    policy = RetryPolicy()
    assert [policy.ceiling_s(n) for n in range(1, 12)] == [
        1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 300.0, 300.0
    ]  # fmt: skip
    assert policy.ceiling_s(0) == 1.0  # never below base_s * factor ** 0


def test_ceiling_follows_base_factor_and_cap() -> None:
    policy = RetryPolicy(base_s=0.5, factor=3.0, cap_s=10.0)
    assert [policy.ceiling_s(n) for n in range(1, 6)] == [0.5, 1.5, 4.5, 10.0, 10.0]
    assert RetryPolicy(base_s=2.0, factor=1.0).ceiling_s(50) == 2.0
    assert RetryPolicy(base_s=0.0).ceiling_s(7) == 0.0
    assert RetryPolicy(cap_s=0.0).ceiling_s(3) == 0.0
    assert isinstance(RetryPolicy(base_s=1, factor=2, cap_s=60).ceiling_s(2), float)


def test_the_webhook_policy() -> None:
    assert send_webhook.retry is WEBHOOK_RETRY
    assert send_webhook.max_attempts == 5
    assert [WEBHOOK_RETRY.ceiling_s(n) for n in range(1, 9)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_ceiling_of_a_very_late_attempt_is_the_cap() -> None:
    policy = RetryPolicy(max_attempts=2000)
    assert policy.ceiling_s(1100) == 300.0
    assert 0.0 <= policy.delay_s(1100, RuntimeError("x"), random.Random(1)) <= 300.0


# --- jittered delay --------------------------------------------------------------------------------


@pytest.mark.parametrize(("attempt", "ceiling"), [(1, 1.0), (3, 4.0), (6, 32.0), (20, 300.0)])
def test_delay_is_full_jitter_within_the_ceiling(attempt: int, ceiling: float) -> None:
    policy = RetryPolicy()
    rng = random.Random(20240611)
    samples = [policy.delay_s(attempt, RuntimeError("boom"), rng) for _ in range(2000)]
    assert all(0.0 <= s <= ceiling for s in samples)
    # spread over the whole range, not constant and not clustered at one end
    assert len(set(samples)) == len(samples)
    assert min(samples) < 0.05 * ceiling
    assert max(samples) > 0.95 * ceiling
    assert 0.45 * ceiling < statistics.fmean(samples) < 0.55 * ceiling
    below_half = sum(s < ceiling / 2 for s in samples)
    assert 900 < below_half < 1100


def test_delay_is_reproducible_with_a_seeded_rng() -> None:
    policy = RetryPolicy()
    first = [policy.delay_s(4, ValueError(), random.Random(7)) for _ in range(3)]
    again = [policy.delay_s(4, ValueError(), random.Random(7)) for _ in range(3)]
    assert first == again
    assert len(set(first)) == 1  # a fresh Random(7) each time: the same first draw


def test_delay_without_an_rng_uses_the_module_random() -> None:
    policy = RetryPolicy(base_s=10.0, cap_s=10.0)
    samples = {policy.delay_s(1, RuntimeError()) for _ in range(200)}
    assert all(0.0 <= s <= 10.0 for s in samples)
    assert len(samples) > 150


def test_zero_ceiling_means_no_wait() -> None:
    policy = RetryPolicy(base_s=0.0)
    rng = random.Random(3)
    assert {policy.delay_s(n, RuntimeError(), rng) for n in range(1, 50)} == {0.0}


# --- Retry-After -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "delay"),
    [
        (7, 7.0),
        (0, 0.0),
        (0.25, 0.25),
        (299.5, 299.5),
        (1000, 1000.0),  # above cap_s (300): honoured exactly anyway
        (MAX_RETRY_AFTER_S, MAX_RETRY_AFTER_S),
        (MAX_RETRY_AFTER_S + 1, MAX_RETRY_AFTER_S),
        (10**9, MAX_RETRY_AFTER_S),
        (float("inf"), MAX_RETRY_AFTER_S),
        (-5, 0.0),
    ],
)
def test_retry_after_is_honoured_exactly(retry_after: float, delay: float) -> None:
    policy = RetryPolicy()
    rng = random.Random(1)
    for attempt in (1, 2, 9):
        got = policy.delay_s(attempt, TransientError("slow down", retry_after_s=retry_after), rng)
        assert got == delay and isinstance(got, float)


def test_retry_after_wins_over_a_small_cap() -> None:
    policy = RetryPolicy(base_s=1.0, cap_s=2.0)
    assert policy.delay_s(1, WebhookUnavailableError("http://t/", 503, 120.0)) == 120.0
    assert WEBHOOK_RETRY.delay_s(1, WebhookUnavailableError("http://t/", 429, 7.0)) == 7.0


def test_transient_error_without_retry_after_is_jittered() -> None:
    policy = RetryPolicy()
    rng = random.Random(5)
    delays = {policy.delay_s(3, WebhookUnavailableError("http://t/", 503, None), rng) for _ in range(100)}
    assert all(0.0 <= d <= 4.0 for d in delays) and len(delays) == 100


def test_retry_after_attribute_on_other_errors_is_ignored() -> None:
    policy = RetryPolicy()
    rng = random.Random(11)
    delays = [policy.delay_s(2, Throttled(), rng) for _ in range(100)]
    assert all(0.0 <= d <= 2.0 for d in delays)


# --- classification --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        PermanentError("no"),
        JobCancelledError("cancelled"),
        WebhookRejectedError("http://t/", 400),
        TaskInputError("noop", [{"loc": ["value"], "msg": "bad", "type": "value_error"}]),
    ],
)
def test_permanent_errors_are_never_retried(error: BaseException) -> None:
    # even when retry_on names them (or their base classes) explicitly
    for policy in (
        RetryPolicy(),
        RetryPolicy(retry_on=(BaseException,)),
        RetryPolicy(retry_on=(type(error),)),
        RetryPolicy(max_attempts=100, retry_on=(PermanentError, TaskInputError)),
    ):
        assert policy.is_transient(error) is False
        assert policy.should_retry(error, 1) is False


@pytest.mark.parametrize(
    "error",
    [
        TransientError("again"),
        TransientError("later", retry_after_s=3),
        TimeLimitExceeded(30),
        SoftTimeLimitExceeded(24),
        WorkerLostError("worker died"),
        WebhookUnavailableError("http://t/", 503),
    ],
)
def test_transient_errors_are_retried_even_when_retry_on_excludes_them(error: BaseException) -> None:
    for policy in (RetryPolicy(), RetryPolicy(retry_on=(KeyError,)), RetryPolicy(retry_on=())):
        assert policy.is_transient(error) is True
        assert policy.should_retry(error, 1) is True
        assert policy.should_retry(error, 2) is True


def test_retry_on_restricts_other_exceptions() -> None:
    policy = RetryPolicy(retry_on=(ConnectionError, TimeoutError))
    assert policy.is_transient(ConnectionResetError()) is True  # a subclass of ConnectionError
    assert policy.is_transient(TimeoutError()) is True
    assert policy.is_transient(RuntimeError("bug")) is False
    assert policy.is_transient(ValueError("bad")) is False
    assert policy.should_retry(RuntimeError("bug"), 1) is False
    assert RetryPolicy(retry_on=()).is_transient(ConnectionError()) is False


def test_default_policy_retries_any_exception() -> None:
    policy = RetryPolicy()
    assert policy.is_transient(RuntimeError()) is True
    assert policy.is_transient(KeyError("k")) is True
    assert policy.is_transient(KeyboardInterrupt()) is False  # a BaseException, not an Exception


def test_fail_on_wins_over_retry_on_and_transient() -> None:
    policy = RetryPolicy(retry_on=(Exception,), fail_on=(ValueError, WebhookUnavailableError))
    assert policy.is_transient(ValueError()) is False
    assert policy.is_transient(UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad")) is False  # a ValueError
    assert policy.is_transient(WebhookUnavailableError("http://t/", 502)) is False
    assert policy.is_transient(TimeLimitExceeded(1)) is True
    assert policy.is_transient(RuntimeError()) is True


def test_should_retry_is_false_on_the_last_attempt() -> None:
    policy = RetryPolicy(max_attempts=3)
    error = TransientError("again")
    assert [policy.should_retry(error, n) for n in (1, 2, 3, 4)] == [True, True, False, False]
    once = RetryPolicy(max_attempts=1)
    assert once.should_retry(error, 1) is False
    assert once.should_retry(TimeLimitExceeded(5), 1) is False


# --- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be at least 1"),
        ({"max_attempts": -3}, "max_attempts must be at least 1"),
        ({"base_s": -0.1}, "backoff needs base_s >= 0, cap_s >= 0 and factor >= 1"),
        ({"cap_s": -1.0}, "backoff needs base_s >= 0, cap_s >= 0 and factor >= 1"),
        ({"factor": 0.5}, "backoff needs base_s >= 0, cap_s >= 0 and factor >= 1"),
        ({"factor": 0.0}, "backoff needs base_s >= 0, cap_s >= 0 and factor >= 1"),
    ],
)
def test_invalid_policies_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        RetryPolicy(**kwargs)
    assert str(refused.value) == message


def test_edge_policies_are_accepted() -> None:
    policy = RetryPolicy(max_attempts=1, base_s=0.0, factor=1.0, cap_s=0.0)
    assert (policy.max_attempts, policy.ceiling_s(1)) == (1, 0.0)


def test_task_refuses_max_attempts_that_contradicts_its_policy() -> None:
    with pytest.raises(ValueError) as refused:
        task(max_attempts=2, retry=RetryPolicy(max_attempts=4))
    assert str(refused.value) == "give max_attempts in the RetryPolicy or as max_attempts, not both"


def test_task_takes_max_attempts_or_a_policy() -> None:
    policy = RetryPolicy(max_attempts=4, base_s=0.5)
    same = task(name="same", max_attempts=4, retry=policy)(handler)
    assert same.retry is policy and same.max_attempts == 4
    only_count = task(name="count", max_attempts=6)(handler)
    assert only_count.retry == RetryPolicy(max_attempts=6) and only_count.max_attempts == 6
    default = task(name="default")(handler)
    assert default.retry == RetryPolicy() and default.max_attempts == 3


# --- Retry-After parsing ---------------------------------------------------------------------------


def response(retry_after: str | bytes | None, status: int = 503) -> httpx.Response:
    if retry_after is None:
        return httpx.Response(status)
    value = retry_after if isinstance(retry_after, bytes) else retry_after.encode()
    return httpx.Response(status, headers=[(b"Retry-After", value)])


@pytest.mark.parametrize(("value", "seconds"), [("7", 7.0), ("0", 0.0), (" 120 ", 120.0), ("3600", 3600.0)])
def test_retry_after_seconds(value: str, seconds: float) -> None:
    got = retry_after_s(response(value))
    assert got == seconds and isinstance(got, float)


def test_retry_after_http_date_in_the_future() -> None:
    when = datetime.now(UTC) + timedelta(seconds=90)
    got = retry_after_s(response(format_datetime(when, usegmt=True)))
    assert got is not None
    assert 88.0 < got <= 90.0  # HTTP dates have whole seconds


def test_retry_after_http_date_with_an_offset() -> None:
    when = datetime.now(timezone(timedelta(hours=2))) + timedelta(seconds=45)
    header = format_datetime(when)
    assert header.endswith(" +0200")
    got = retry_after_s(response(header))
    assert got is not None and 43.0 < got <= 45.0


def test_retry_after_http_date_in_the_past_is_zero() -> None:
    assert retry_after_s(response("Wed, 21 Oct 2015 07:28:00 GMT")) == 0.0
    assert retry_after_s(response("Wed, 21 Oct 2015 07:28:00")) == 0.0  # no zone: read as UTC


@pytest.mark.parametrize("value", ["", "   ", "soon", "-1", "1.5", "7 seconds", "Thursday", "0x10", "1e3"])
def test_retry_after_garbage_is_none(value: str) -> None:
    assert retry_after_s(response(value)) is None


def test_retry_after_absent_is_none() -> None:
    assert retry_after_s(response(None)) is None


def test_retry_after_with_non_ascii_digits_is_none() -> None:
    assert retry_after_s(response(b"\xb2")) is None


# --- send_webhook classification -------------------------------------------------------------------


def http_client(status: int, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=headers or {}, json={"status": status})

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


HOOK = WebhookInput(url="https://hooks.example/in", payload={"n": 1})  # type: ignore[arg-type]


async def test_503_with_retry_after_is_unavailable_after_that_long(
    arq_redis: ArqRedis, settings: Settings
) -> None:
    async with http_client(503, {"Retry-After": "7"}) as http:
        with pytest.raises(WebhookUnavailableError) as failed:
            await send_webhook(job_context(arq_redis, settings, http), HOOK)
    error = failed.value
    assert (error.status_code, error.retry_after_s, error.url) == (503, 7.0, "https://hooks.example/in")
    assert str(error) == "webhook target https://hooks.example/in answered HTTP 503"
    assert WEBHOOK_RETRY.should_retry(error, 1) is True
    assert WEBHOOK_RETRY.should_retry(error, 5) is False
    assert WEBHOOK_RETRY.delay_s(1, error) == 7.0


@pytest.mark.parametrize(
    ("status", "headers"), [(429, {}), (429, {"Retry-After": "30"}), (500, {}), (502, {})]
)
async def test_429_and_5xx_are_unavailable(
    arq_redis: ArqRedis, settings: Settings, status: int, headers: dict[str, str]
) -> None:
    async with http_client(status, headers) as http:
        with pytest.raises(WebhookUnavailableError) as failed:
            await send_webhook(job_context(arq_redis, settings, http), HOOK)
    assert failed.value.status_code == status
    assert failed.value.retry_after_s == (30.0 if headers else None)
    assert send_webhook.retry.should_retry(failed.value, 1) is True


@pytest.mark.parametrize("status", [400, 401, 404, 410, 302, 301, 304])
async def test_other_non_2xx_are_rejected_for_good(
    arq_redis: ArqRedis, settings: Settings, status: int
) -> None:
    async with http_client(status, {"Retry-After": "5", "Location": "https://elsewhere.example/"}) as http:
        with pytest.raises(WebhookRejectedError) as failed:
            await send_webhook(job_context(arq_redis, settings, http), HOOK)
    assert failed.value.status_code == status
    assert not isinstance(failed.value, TransientError)
    assert send_webhook.retry.should_retry(failed.value, 1) is False


async def test_503_with_unreadable_retry_after_is_still_unavailable(
    arq_redis: ArqRedis, settings: Settings
) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers=[(b"Retry-After", b"\xb2")])

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
        with pytest.raises(WebhookUnavailableError) as failed:
            await send_webhook(job_context(arq_redis, settings, http), HOOK)
    assert failed.value.retry_after_s is None


@pytest.mark.parametrize(
    "error", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("eof")]
)
async def test_transport_errors_propagate_and_are_retried(
    arq_redis: ArqRedis, settings: Settings, error: httpx.TransportError
) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        raise error

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
        with pytest.raises(type(error)) as failed:
            await send_webhook(job_context(arq_redis, settings, http), HOOK)
    assert failed.value is error
    policy = send_webhook.retry
    assert [policy.should_retry(error, n) for n in range(1, 7)] == [True, True, True, True, False, False]
    assert 0.0 <= policy.delay_s(1, error, random.Random(0)) <= 1.0


def test_webhook_policy_classification() -> None:
    policy = send_webhook.retry
    assert policy.should_retry(httpx.ConnectError("refused"), 1) is True
    assert policy.should_retry(httpx.ReadTimeout("slow"), 4) is True
    assert policy.should_retry(WebhookUnavailableError("http://t/", 503), 1) is True
    assert policy.should_retry(TimeLimitExceeded(30), 1) is True
    assert policy.should_retry(WebhookRejectedError("http://t/", 404), 1) is False
    assert policy.should_retry(ValueError("bug in the task"), 1) is False  # retry_on is transport errors only
