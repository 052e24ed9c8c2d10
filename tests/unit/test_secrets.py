"""Secret task inputs (arq_jobs._secrets): where the marker may sit, "***" in every output (details,
dead letters over the API, the dashboard and the CLI), sealed in Redis with JOBS_SECRETS_KEY and
opened for the task only, key rotation, Idempotency-Key replays, and Redis errors in the logs."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest
from arq.connections import ArqRedis
from cryptography.fernet import Fernet
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.exceptions import OutOfMemoryError, RedisError, ResponseError
from typer.testing import CliRunner

from arq_jobs import PermanentError, RetryPolicy, Secret, TaskInput, TransientError, task
from arq_jobs._api.deps import AppState, get_state
from arq_jobs._cli.main import app as cli_app
from arq_jobs._cli.session import redis_failure
from arq_jobs._client import JobClient
from arq_jobs._clock import now_ms
from arq_jobs._config import Settings, describe_error
from arq_jobs._deadletters import DeadLetterError, FailureReason, build_dead_letter
from arq_jobs._errors import TaskInputError
from arq_jobs._idempotency import IdempotencyClaim, fingerprint
from arq_jobs._jobs.records import JobError
from arq_jobs._keys import Keys
from arq_jobs._redis_errors import describe_redis_error
from arq_jobs._secrets import (
    MIN_SCRUBBED_CHARS,
    ScrubbedError,
    SecretsKey,
    redact,
    scrub,
    scrub_exception,
    seal,
    secret_paths,
    secret_values,
    unseal,
)
from arq_jobs._serializer import dumps, encode_exception, loads
from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import TaskRegistry
from arq_jobs._worker.outage import OutageGaveUp, RedisHealth
from tests.apps import create_app
from tests.shipped import registry as shipped
from workers.tasks.noop import NoopInput, noop
from workers.tasks.webhooks import WebhookInput

from .conftest import Invoke, RunWorker, make_settings

KEY_A = base64.urlsafe_b64encode(b"a" * 32).decode()
KEY_B = base64.urlsafe_b64encode(b"b" * 32).decode()
PASSWORD = "hunter2-pw"
TOKEN = "Bearer s3cr3t-token"
SECRETS = (PASSWORD.encode(), b"s3cr3t")


class VaultInput(TaskInput):
    user: str
    password: Annotated[str, Secret]
    headers: dict[str, Annotated[str, Secret]] = Field(default_factory=dict)
    fail: bool = False


RECEIVED: list[VaultInput] = []


@task(retry=RetryPolicy(max_attempts=1))
async def open_vault(ctx: JobContext, data: VaultInput) -> str:
    """Record what the task was given; fail for good when asked to."""
    RECEIVED.append(data)
    if data.fail:
        raise PermanentError("the vault stayed shut")
    return f"opened for {data.user}"


class TokenInput(TaskInput):
    token: Annotated[str, Secret]
    short: Annotated[str, Secret] = "abc"  # shorter than MIN_SCRUBBED_CHARS: left in error texts


FAILED_ATTEMPTS: list[tuple[str, int]] = []


@task(retry=RetryPolicy(max_attempts=3, base_s=0))
async def quotes_token(ctx: JobContext, data: TokenInput) -> None:
    """Fail quoting the secret token: a ValueError, retried until the attempts run out."""
    FAILED_ATTEMPTS.append((ctx.task, ctx.attempt))
    raise ValueError(f"bad token {data.token} ({data.short})")


@task(retry=RetryPolicy(max_attempts=3, base_s=0, fail_on=(ValueError,)))
async def refuses_token(ctx: JobContext, data: TokenInput) -> None:
    """The same failure, which this task's policy fails at once (fail_on)."""
    FAILED_ATTEMPTS.append((ctx.task, ctx.attempt))
    raise ValueError(f"bad token {data.token} ({data.short})")


REGISTRY = TaskRegistry([*shipped, open_vault, quotes_token, refuses_token])
GIVEN = {"user": "ann", "password": PASSWORD, "headers": {"Authorization": TOKEN}, "fail": False}
SHOWN = {"user": "ann", "password": "***", "headers": {"Authorization": "***"}, "fail": False}


@pytest.fixture(autouse=True)
def nothing_received() -> Iterator[None]:
    RECEIVED.clear()
    FAILED_ATTEMPTS.clear()
    yield
    RECEIVED.clear()
    FAILED_ATTEMPTS.clear()


@pytest.fixture
def registry() -> TaskRegistry:
    return REGISTRY


@pytest.fixture
def settings() -> Settings:
    return make_settings(secrets_key=KEY_A)


def vault(**changes: Any) -> VaultInput:
    return VaultInput.model_validate({**GIVEN, **changes})


async def everything_stored(redis: ArqRedis) -> bytes:
    """Every key and value in the (fake) Redis, whatever its type, as one byte string."""
    found = []
    async for key in redis.scan_iter(match="*"):
        kind = (await redis.type(key)).decode()
        value: Any
        if kind == "string":
            value = await redis.get(key)
        elif kind == "hash":
            value = await redis.hgetall(key)  # type: ignore[misc]
        elif kind == "list":
            value = await redis.lrange(key, 0, -1)  # type: ignore[misc]
        elif kind == "set":
            value = await redis.smembers(key)  # type: ignore[misc]
        elif kind == "zset":
            value = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = await redis.xrange(key)
        else:
            raise AssertionError(f"key {key!r} has an unexpected type {kind}")
        found.append(repr((key, value)).encode())
    return b"\n".join(found)


def no_secret_in(text: str | bytes) -> bool:
    data = text if isinstance(text, bytes) else text.encode()
    return not any(secret in data for secret in SECRETS)


# --- the marker and where it may sit ---------------------------------------------------------------


class Credentials(BaseModel):
    login: str
    key: Annotated[str, Secret]


class Node(BaseModel):
    token: Annotated[str, Secret]
    children: list[Node] = []


class Everywhere(TaskInput):
    plain: str = "shown"
    field: Annotated[str, Secret] = "f"
    optional: Annotated[str, Secret] | None = None
    nested: Credentials = Credentials(login="bob", key="k")
    whole: Annotated[Credentials, Secret] = Credentials(login="eve", key="k2")
    extra: Credentials = Field(default=Credentials(login="x", key="y"), json_schema_extra={"x-secret": True})
    by_key: dict[str, Annotated[str, Secret]] = {}
    items: list[Annotated[int, Secret]] = []
    pair: tuple[str, Annotated[str, Secret]] = ("first", "second")
    tree: Node | None = None


@task()
async def everywhere(ctx: JobContext, data: Everywhere) -> None:
    """A task whose input has a secret in every kind of place."""


def test_the_marker_makes_a_value_secret_and_write_only_in_the_schema() -> None:
    value_schema = next(
        iter(WebhookInput.model_json_schema()["properties"]["headers"]["patternProperties"].values())
    )
    assert (value_schema["x-secret"], value_schema["writeOnly"]) == (True, True)
    assert Everywhere.model_json_schema()["properties"]["field"] == {
        "default": "f",
        "title": "Field",
        "type": "string",
        "writeOnly": True,
        "x-secret": True,
    }
    assert repr(Secret) == "Secret"


def test_secrets_are_found_on_fields_nested_models_dict_values_list_items_and_recursive_models() -> None:
    payload = Everywhere(
        optional="o",
        by_key={"a": "1", "b": "2"},
        items=[1, 2],
        tree=Node(token="t1", children=[Node(token="t2")]),
    ).model_dump(mode="json")
    assert redact(everywhere, payload) == {
        "plain": "shown",
        "field": "***",
        "optional": "***",
        "nested": {"login": "bob", "key": "***"},
        "whole": "***",
        "extra": "***",
        "by_key": {"a": "***", "b": "***"},
        "items": ["***", "***"],
        "pair": ["first", "***"],
        "tree": {"token": "***", "children": [{"token": "***", "children": []}]},
    }
    assert payload["field"] == "f"  # a copy was redacted
    assert redact(everywhere, {**payload, "optional": None})["optional"] is None  # null stays null


class Open(TaskInput):
    """Named properties, and any other ones secret."""

    model_config = ConfigDict(
        extra="allow", json_schema_extra={"additionalProperties": {"type": "string", "x-secret": True}}
    )
    name: str


@task()
async def open_ended(ctx: JobContext, data: Open) -> None:
    """A task whose input takes extra fields, every one of them secret."""


def test_a_named_property_is_not_one_of_the_other_values() -> None:
    assert redact(open_ended, {"name": "shown", "token": "t"}) == {"name": "shown", "token": "***"}


def test_a_task_without_secrets_is_shown_as_stored_and_an_unknown_one_not_at_all() -> None:
    assert not secret_paths(NoopInput)
    payload = {"value": {"password": "not marked, so not secret"}}
    assert redact(noop, payload) is payload
    assert redact(None, {"a": 1}) == "***"
    assert redact(None, None) is None


# --- sealing ---------------------------------------------------------------------------------------


def test_sealed_values_are_fernet_tokens_that_the_model_never_takes_for_plaintext() -> None:
    key = SecretsKey([KEY_A])
    sealed = seal(open_vault, GIVEN, key)
    assert set(sealed) == set(GIVEN)
    assert (sealed["user"], sealed["fail"]) == ("ann", False)
    assert list(sealed["password"]) == ["$secret"]
    assert Fernet(KEY_A).decrypt(sealed["password"]["$secret"]) == json.dumps(PASSWORD).encode()
    assert list(sealed["headers"]) == ["Authorization"]
    assert Fernet(KEY_A).decrypt(sealed["headers"]["Authorization"]["$secret"]) == json.dumps(TOKEN).encode()
    assert no_secret_in(dumps(sealed))
    with pytest.raises(TaskInputError):
        open_vault.parse_input(sealed)
    assert unseal(open_vault, sealed, key) == GIVEN
    assert seal(open_vault, GIVEN, None) == GIVEN  # without a key: stored as given


def test_a_rotated_key_still_opens_what_the_old_one_sealed() -> None:
    sealed_with_a = seal(open_vault, GIVEN, SecretsKey([KEY_A]))
    rotated = SecretsKey([KEY_B, KEY_A])
    assert unseal(open_vault, sealed_with_a, rotated) == GIVEN
    sealed_after = seal(open_vault, GIVEN, rotated)  # the first key seals
    assert unseal(open_vault, sealed_after, SecretsKey([KEY_B])) == GIVEN
    with pytest.raises(TaskInputError) as lost:
        unseal(open_vault, sealed_with_a, SecretsKey([KEY_B]))
    assert lost.value.errors[0] == {
        "loc": ["password"],
        "msg": "stored encrypted with a key that JOBS_SECRETS_KEY does not hold (any more)",
        "type": "secret_unreadable",
    }
    with pytest.raises(TaskInputError) as unset:
        unseal(open_vault, sealed_with_a, None)
    assert str(unset.value) == (
        "invalid input for task 'open_vault': password: stored encrypted, and JOBS_SECRETS_KEY is not set"
    )


def test_values_stored_before_a_key_was_set_are_read_as_they_are() -> None:
    assert unseal(open_vault, GIVEN, SecretsKey([KEY_A])) == GIVEN


def test_a_malformed_key_is_refused_without_being_printed() -> None:
    assert make_settings(secrets_key=f" {KEY_B} ,{KEY_A}").secrets_key is not None
    with pytest.raises(ValidationError) as refused:
        make_settings(secrets_key=f"{KEY_A},{PASSWORD}")
    assert describe_error(refused.value) == (
        "invalid settings: JOBS_SECRETS_KEY: Value error, key 2 is not a Fernet key "
        "(`arq-jobs secret-key` prints a new one)"
    )
    assert no_secret_in(str(refused.value))


# --- stored sealed, run opened, shown redacted -----------------------------------------------------


async def test_secrets_are_sealed_in_redis_and_opened_only_for_the_task(
    job_client: JobClient, arq_redis: ArqRedis, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(open_vault, vault())
    assert no_secret_in(await arq_redis.get(Keys.arq_job(job.job_id)) or b"missing")
    assert (await job_client.details(job.job_id)).input == SHOWN
    await run_worker()
    assert [received.model_dump() for received in RECEIVED] == [GIVEN]
    assert (await job_client.status(job.job_id)).result == "opened for ann"
    details = await job_client.details(job.job_id)  # read from ARQ's result now
    assert (details.input, details.input_kept) == (SHOWN, True)
    stored = await everything_stored(arq_redis)
    assert job.job_id.encode() in stored and b"ann" in stored
    assert no_secret_in(stored)


async def test_without_a_key_secrets_are_stored_as_given_and_still_shown_redacted(
    arq_redis: ArqRedis, run_worker: RunWorker
) -> None:
    client = JobClient(arq_redis, make_settings(), REGISTRY)
    job = await client.enqueue(open_vault, vault())
    assert PASSWORD.encode() in (await arq_redis.get(Keys.arq_job(job.job_id)) or b"")
    await run_worker()
    assert [received.password for received in RECEIVED] == [PASSWORD]
    assert (await client.details(job.job_id)).input == SHOWN


async def test_a_worker_never_logs_a_payload(
    arq_redis: ArqRedis,
    run_worker: RunWorker,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = JobClient(arq_redis, make_settings(), REGISTRY)  # no key: ARQ hands the worker the plaintext
    done = await client.enqueue(open_vault, vault())
    failed = await client.enqueue(open_vault, vault(fail=True))
    await run_worker()
    assert len(RECEIVED) == 2
    logged = capsys.readouterr().err + caplog.text
    for job in (done, failed):
        assert f'"job_id":"{job.job_id}"' in logged  # the worker's lines are here
    assert no_secret_in(logged) and "ann" not in logged  # not even ARQ's "→ open_vault(...)" line


async def test_a_dead_letter_is_kept_sealed_shown_redacted_and_retried_with_its_secrets(
    job_client: JobClient, arq_redis: ArqRedis, run_worker: RunWorker, client: httpx.AsyncClient
) -> None:
    failed = await job_client.enqueue(open_vault, vault(fail=True))
    await run_worker()
    assert no_secret_in(await arq_redis.get(Keys("unit").dead_letter(failed.job_id)) or b"missing")
    letter = await job_client.dead_letters.get(failed.job_id)
    assert (letter.input, letter.error.message) == ({**SHOWN, "fail": True}, "the vault stayed shut")
    one = await client.get(f"/dead-letters/{failed.job_id}")
    assert (one.status_code, one.json()["input"]) == (200, {**SHOWN, "fail": True})
    listed = (await client.get("/dead-letters")).json()["items"]
    assert [(item["job_id"], item["input"]) for item in listed] == [(failed.job_id, {**SHOWN, "fail": True})]

    retried = await job_client.retry_dead_letter(failed.job_id)  # opened, validated, sealed again
    assert no_secret_in(await arq_redis.get(Keys.arq_job(retried.job_id)) or b"missing")
    await run_worker()
    assert [received.password for received in RECEIVED] == [PASSWORD, PASSWORD]
    assert [received.headers for received in RECEIVED] == [{"Authorization": TOKEN}] * 2
    assert no_secret_in(await everything_stored(arq_redis))


async def test_a_worker_without_the_key_fails_the_job_for_good_and_a_retry_after_the_fix_runs_it(
    job_client: JobClient, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(open_vault, vault())  # sealed with KEY_A
    await run_worker(settings=make_settings(secrets_key=KEY_B))
    assert RECEIVED == []
    letter = await job_client.dead_letters.get(job.job_id)
    assert (letter.reason, letter.error.type, letter.error.message) == (
        FailureReason.PERMANENT,
        "TaskInputError",
        "invalid input for task 'open_vault': password: stored encrypted with a key that JOBS_SECRETS_KEY "
        "does not hold (any more)",
    )
    retried = await job_client.retry_dead_letter(job.job_id)
    await run_worker(settings=make_settings(secrets_key=f"{KEY_B},{KEY_A}"))  # the rotation done right
    assert [received.password for received in RECEIVED] == [PASSWORD]
    assert (await job_client.status(retried.job_id)).result == "opened for ann"


async def test_the_input_of_a_dead_letter_whose_task_is_unknown_is_hidden(
    job_client: JobClient, arq_redis: ArqRedis, client: httpx.AsyncClient
) -> None:
    letter = build_dead_letter(
        "gone-1",
        None,
        task="retired_task",
        payload={"password": PASSWORD},
        error=DeadLetterError(type="JobExecutionFailed", message="function 'retired_task' not found"),
        reason=FailureReason.UNKNOWN_TASK,
        attempts=1,
        failed_ms=now_ms(),
        worker="host:1",
    )
    async with arq_redis.pipeline(transaction=True) as pipe:
        job_client.dead_letters.add(pipe, letter, now_ms())
        await pipe.execute()
    answer = await client.get("/dead-letters/gone-1")
    assert (answer.status_code, answer.json()["task"], answer.json()["input"]) == (200, "retired_task", "***")


async def test_the_dashboard_shows_secrets_as_stars(
    job_client: JobClient, run_worker: RunWorker, client: httpx.AsyncClient
) -> None:
    failed = await job_client.enqueue(open_vault, vault(fail=True))
    await run_worker()
    waiting = await job_client.enqueue(open_vault, vault(), delay=600)  # after: a burst worker waits for it
    for path in (
        f"/dashboard/jobs/{waiting.job_id}",
        f"/dashboard/jobs/{failed.job_id}",
        "/dashboard/dead-letters",
    ):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert no_secret_in(page.text), path
    job_page = (await client.get(f"/dashboard/jobs/{waiting.job_id}")).text
    assert "&#34;password&#34;: &#34;***&#34;" in job_page
    assert "&#34;Authorization&#34;: &#34;***&#34;" in job_page


async def test_the_cli_shows_secrets_as_stars(
    job_client: JobClient, run_worker: RunWorker, invoke: Invoke
) -> None:
    failed = await job_client.enqueue(open_vault, vault(fail=True))
    await run_worker()
    cli = invoke  # the CLI on this module's registry (its `registry` fixture)

    shown = await cli("dead", "show", failed.job_id, "--json")
    assert (shown.exit_code, json.loads(shown.stdout)["input"]) == (0, {**SHOWN, "fail": True})
    table = await cli("dead", "show", failed.job_id)
    assert table.exit_code == 0 and '"password": "***"' in table.stdout
    listed = await cli("dead", "list", "--json")
    assert listed.exit_code == 0
    assert [item["input"] for item in json.loads(listed.stdout)["items"]] == [{**SHOWN, "fail": True}]
    for result in (shown, table, listed):
        assert no_secret_in(result.stdout + result.stderr)


def test_secret_key_prints_a_new_fernet_key() -> None:
    first, second = (CliRunner().invoke(cli_app, ["secret-key"]) for _ in range(2))
    assert (first.exit_code, second.exit_code) == (0, 0)
    key = first.stdout.strip()
    assert first.stdout == key + "\n" and key != second.stdout.strip()
    assert Fernet(key).decrypt(Fernet(key).encrypt(b"x")) == b"x"
    assert make_settings(secrets_key=key).secrets_key is not None


# --- Idempotency-Key replays ------------------------------------------------------------------------


def claim_key(key: str) -> str:
    return f"unit:idempotency:{hashlib.sha256(key.encode()).hexdigest()}"


async def test_a_repeated_request_with_secrets_replays_and_another_secret_conflicts(
    client: httpx.AsyncClient, arq_redis: ArqRedis, registry: TaskRegistry
) -> None:
    headers = {"Idempotency-Key": "vault-1"}
    first = await client.post("/jobs/open_vault", json=GIVEN, headers=headers)
    again = await client.post("/jobs/open_vault", json=GIVEN, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["job_id"] == first.json()["job_id"]
    other = await client.post("/jobs/open_vault", json={**GIVEN, "password": "other"}, headers=headers)
    assert (other.status_code, other.json()["error"]) == (409, "idempotency_conflict")

    claim = IdempotencyClaim.parse(await arq_redis.get(claim_key("vault-1")))
    assert claim is not None and claim.job_id == first.json()["job_id"]
    # a keyed hash of the secrets: the fingerprint of the plaintext request is not what is stored
    assert claim.fingerprint != fingerprint("open_vault", GIVEN, None, None)

    rotated = make_settings(secrets_key=f"{KEY_B},{KEY_A}")
    app = create_app(rotated, registry)
    app.dependency_overrides[get_state] = lambda: AppState(rotated, registry, arq_redis)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as after:
        replayed = await after.post("/jobs/open_vault", json=GIVEN, headers=headers)
    assert (replayed.status_code, replayed.json()["job_id"]) == (200, first.json()["job_id"])


# --- Redis errors in the logs ------------------------------------------------------------------------


async def pipeline_error(redis: ArqRedis) -> RedisError:
    """The error redis-py raises when a pipeline's command carrying the payload fails: it quotes the
    command with its arguments."""
    await redis.set("unit:not-a-list", "x")
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.set("unit:fine", "1")
            pipe.lpush("unit:not-a-list", dumps(GIVEN))
            await pipe.execute()
    except ResponseError as error:
        return error
    raise AssertionError("the pipeline did not fail")


async def test_a_redis_error_is_described_by_its_type_and_command_only(arq_redis: ArqRedis) -> None:
    error = await pipeline_error(arq_redis)
    assert not no_secret_in(str(error))  # what would reach the log
    assert describe_redis_error(error) == "ResponseError in LPUSH (command 2 of a pipeline)"
    assert describe_redis_error(
        ResponseError(f"ERR unknown command, with args beginning with: '{PASSWORD}'"), "x"
    ) == ("ResponseError in X")
    refused = ConnectionRefusedError(111, "Connection refused")
    assert describe_redis_error(refused) == "ConnectionRefusedError: [Errno 111] Connection refused"
    cli_error = redis_failure(make_settings(redis_url=f"redis://:{PASSWORD}@127.0.0.1:1/0"), error)
    assert str(cli_error) == (
        "Redis at redis://:***@127.0.0.1:1/0 refused the request: ResponseError in LPUSH (command 2 of a pipeline)"
    )


async def test_the_worker_logs_a_redis_error_without_its_arguments(
    arq_redis: ArqRedis, caplog: pytest.LogCaptureFixture
) -> None:
    # Redis out of memory for a pipeline's EVAL carrying the payload, annotated by redis-py itself
    error = OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")
    arq_redis.pipeline().annotate_exception(error, 3, ("EVAL", "return 1", 1, "unit:job:1", dumps(GIVEN)))
    assert not no_secret_in(str(error))
    caplog.set_level(logging.INFO, logger="arq_jobs._worker.outage")
    health = RedisHealth(hold_s=0, clock=lambda: 5.0)
    health.failed(error)
    health.recovered()

    async def failing() -> None:
        raise error

    with pytest.raises(OutageGaveUp) as gave_up:
        await RedisHealth(hold_s=0, clock=lambda: 5.0).hold(failing)
    described = "OutOfMemoryError in EVAL (command 3 of a pipeline)"
    assert [r.getMessage() for r in caplog.records] == [
        f"Redis unavailable: {described}; taking no new jobs, retrying until it answers",
        f"Redis available again after 0.0 s of outage ({described})",
        f"Redis unavailable: {described}; taking no new jobs, retrying until it answers",
    ]
    assert str(gave_up.value) == f"Redis did not answer for 0 s ({described})"
    assert no_secret_in(caplog.text)


async def test_the_api_logs_a_failed_enqueue_without_the_payload(
    arq_redis: ArqRedis, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings()  # no key: the payload goes to Redis as given
    app = create_app(settings, REGISTRY)
    app.dependency_overrides[get_state] = lambda: AppState(settings, REGISTRY, arq_redis)
    await arq_redis.set(Keys("unit").queue("default"), "not a queue")  # the enqueue's write fails
    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as api:
        answer = await api.post("/jobs/open_vault", json=GIVEN, headers={"Idempotency-Key": "k-1"})
    assert (answer.status_code, answer.json()["error"]) == (503, "redis_unavailable")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    [warning] = warnings  # the EVAL's place in the pipeline is the enqueue's business
    assert re.fullmatch(
        r"redis error during POST /jobs/open_vault: ResponseError in EVAL \(command [0-9]+ of a pipeline\)",
        warning,
    ), warning
    assert no_secret_in(caplog.text)
    assert no_secret_in(answer.text)


# --- errors that quote a secret --------------------------------------------------------------------

LEAKED = "s3cr3t-quoted"  # no_secret_in finds it (b"s3cr3t")


def test_the_secret_values_of_an_input_are_its_plaintexts_long_enough_to_scrub() -> None:
    payload = Everywhere(
        field="field-secret",
        optional="opt-secret",
        nested=Credentials(login="bob-login", key="nested-key"),
        whole=Credentials(login="eve-login", key="whole-key"),
        extra=Credentials(login="x", key="y"),
        by_key={"dict-key": "dict-value", "b": "ab"},
        items=[123456, 7],
        pair=("first-shown", "pair-secret"),
        tree=Node(token="tree-1", children=[Node(token="tree-2")]),
    ).model_dump(mode="json")
    assert MIN_SCRUBBED_CHARS == 4
    assert secret_values(everywhere, payload) == [
        "field-secret",
        "pair-secret",
        "dict-value",
        "nested-key",
        "opt-secret",
        "eve-login",  # a secret model is secret whole: its every value
        "whole-key",
        "123456",
        "tree-1",
        "tree-2",
    ]
    sealed = seal(everywhere, payload, SecretsKey([KEY_A]))
    assert secret_values(everywhere, sealed) == []  # ciphertext is not what a task quotes
    assert secret_values(noop, {"value": "not marked, so not secret"}) == []


def test_a_secret_value_is_also_listed_as_repr_and_json_quote_it() -> None:
    value = 'pa"ss\\wörd'
    assert sorted(secret_values(open_vault, {**GIVEN, "password": value, "headers": {}})) == sorted(
        [
            'pa"ss\\wörd',  # as given
            'pa"ss\\\\wörd',  # repr of the str
            'pa"ss\\\\w\\xc3\\xb6rd',  # repr of its UTF-8 bytes (h11's "Illegal header value b'...'")
            'pa\\"ss\\\\w\\u00f6rd',  # JSON (ASCII)
            'pa\\"ss\\\\wörd',  # JSON
        ]
    )
    assert scrub(repr(value.encode()), secret_values(open_vault, {"password": value})) == "b'***'"


def test_scrub_replaces_the_longest_values_first() -> None:
    assert scrub("token abcdef and abcd, ab", ["abcdef", "abcd"]) == "token *** and ***, ab"


def raised(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as caught:
        return caught


def test_an_error_that_quotes_no_secret_is_kept_as_it_is() -> None:
    error = raised(ValueError("bad token"))
    assert scrub_exception(error, []) is error
    assert scrub_exception(error, [LEAKED]) is error


def test_an_error_quoting_a_secret_is_replaced_by_one_of_the_same_name_with_stars() -> None:
    error = raised(ValueError(f"bad token {LEAKED}!"))
    shown = scrub_exception(error, [LEAKED])
    assert isinstance(shown, ScrubbedError) and not isinstance(shown, ValueError)
    assert (type(shown).__name__, str(shown)) == ("ValueError", "bad token ***!")
    encoded = encode_exception(shown)["__exception__"]
    assert (encoded["type"], encoded["message"]) == ("ValueError", "bad token ***!")
    assert encoded["traceback"].startswith("Traceback (most recent call last):\n")
    assert "    raise error\n" in encoded["traceback"]  # the original's frames
    assert encoded["traceback"].endswith("ValueError: bad token ***!\n")
    assert LEAKED in str(error)  # the original is left as it was


def test_a_secret_quoted_only_by_a_cause_is_scrubbed_from_the_traceback() -> None:
    try:
        try:
            raise KeyError(LEAKED)
        except KeyError as missing:
            raise RuntimeError("lookup failed") from missing
    except RuntimeError as caught:
        error: BaseException = caught
    shown = scrub_exception(error, [LEAKED])
    traceback = encode_exception(shown)["__exception__"]["traceback"]
    assert (type(shown).__name__, str(shown)) == ("RuntimeError", "lookup failed")
    assert "KeyError: '***'\n" in traceback and "RuntimeError: lookup failed" in traceback
    assert LEAKED not in traceback


def test_a_scrubbed_error_keeps_its_kind_and_retry_after() -> None:
    policy = RetryPolicy(max_attempts=3)
    transient = scrub_exception(raised(TransientError(f"down: {LEAKED}", retry_after_s=7)), [LEAKED])
    assert isinstance(transient, TransientError) and not isinstance(transient, PermanentError)
    assert (str(transient), transient.retry_after_s, policy.delay_s(1, transient)) == ("down: ***", 7, 7.0)
    permanent = scrub_exception(raised(PermanentError(f"no: {LEAKED}")), [LEAKED])
    assert isinstance(permanent, PermanentError) and policy.is_transient(permanent) is False
    assert (type(permanent).__name__, permanent.code) == ("PermanentError", "permanent_error")


@pytest.mark.parametrize(
    ("failing", "attempts", "reason"),
    [(quotes_token, 3, "attempts_exhausted"), (refuses_token, 1, "permanent_error")],
)
async def test_a_failure_quoting_a_secret_is_stored_shown_and_logged_with_stars(
    failing: Any,
    attempts: int,
    reason: str,
    job_client: JobClient,
    arq_redis: ArqRedis,
    run_worker: RunWorker,
    client: httpx.AsyncClient,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    job = await job_client.enqueue(failing, TokenInput(token=LEAKED))
    worker = await run_worker()
    assert FAILED_ATTEMPTS == [(failing.name, n) for n in range(1, attempts + 1)]
    assert (worker.jobs_retried, worker.jobs_failed) == (attempts - 1, 1)
    error = {"type": "ValueError", "message": "bad token *** (abc)"}

    status = (await client.get(f"/jobs/{job.job_id}")).json()
    assert (status["status"], status["attempt"], status["error"]) == ("failed", attempts, error)
    letter = (await client.get(f"/dead-letters/{job.job_id}")).json()
    assert (letter["reason"], letter["attempts"]) == (reason, attempts)
    traceback = letter["error"].pop("traceback")
    assert letter["error"] == error
    assert traceback.startswith("Traceback (most recent call last):\n")
    assert '    raise ValueError(f"bad token {data.token} ({data.short})")\n' in traceback
    assert traceback.endswith("ValueError: bad token *** (abc)\n")
    events = await job_client.events.read(job.job_id, "0")
    assert (events[-1].event, events[-1].status.error) == ("failed", JobError(**error))
    entries = await arq_redis.xrange(Keys("unit").events(job.job_id))
    streamed = [(fields[b"event"], loads(fields.get(b"last_error", b"null"))) for _, fields in entries]
    assert streamed == [
        (b"pending", None),
        (b"running", None),
        *[(b"retrying", error), (b"running", error)] * (attempts - 1),
        (b"failed", error if attempts > 1 else None),  # the record's error of the last retry
    ]
    assert loads(entries[-1][1][b"extra"])["r"] == {"__exception__": error}
    result = loads(await arq_redis.get(Keys.arq_result(job.job_id)) or b"null")
    assert (result["s"], result["t"]) == (False, attempts)
    assert result["r"]["__exception__"]["message"] == "bad token *** (abc)"

    stored = await everything_stored(arq_redis)
    assert stored.count(b"bad token *** (abc)") >= 3  # record, dead letter, ARQ's result, events
    assert no_secret_in(stored)
    logged = capsys.readouterr().err + caplog.text
    assert f'"job_id":"{job.job_id}"' in logged
    assert logged.count('"event":"job.retrying"') == attempts - 1
    assert logged.count('"event":"job.failed"') == 1 and '"error_type":"ValueError"' in logged
    assert no_secret_in(logged)
