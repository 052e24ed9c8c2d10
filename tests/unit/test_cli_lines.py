"""`arq-jobs enqueue TASK --json-lines FILE` (arq_jobs._cli.lines) on fakeredis: one job per line, the
whole file checked first (a bad line named by its number, nothing enqueued), sent in batches of up to
1,000, the ids printed one a line (or JSON with -o json)."""

from __future__ import annotations

import json
from pathlib import Path

from arq.connections import ArqRedis

from arq_jobs._cli.errors import ExitCode
from arq_jobs._client import MAX_BATCH_JOBS, JobClient
from arq_jobs._keys import Keys
from arq_jobs._serializer import loads

from .conftest import Invoke
from .test_cli import assert_error, output_json

QUEUE = Keys("unit").queue("default")


def lines_file(tmp_path: Path, *lines: str, name: str = "jobs.jsonl") -> str:
    path = tmp_path / name
    path.write_text("".join(f"{line}\n" for line in lines))
    return str(path)


async def stored_values(arq_redis: ArqRedis, ids: list[str]) -> list[object]:
    return [loads(await arq_redis.get(Keys.arq_job(job_id)))["a"][0]["value"] for job_id in ids]


async def test_each_line_is_a_job_and_the_ids_are_printed_in_order(
    invoke: Invoke, job_client: JobClient, arq_redis: ArqRedis, tmp_path: Path
) -> None:
    source = lines_file(tmp_path, '{"value": 1}', "", '{"value": {"a": [2]}}', "  ", '{"value": "three"}')
    result = await invoke("enqueue", "noop", "--json-lines", source)
    assert (result.exit_code, result.stderr) == (0, "")
    ids = result.stdout.splitlines()
    assert len(ids) == 3 and len(set(ids)) == 3
    assert await stored_values(arq_redis, ids) == [1, {"a": [2]}, "three"]
    assert [(await job_client.status(job_id)).status.value for job_id in ids] == ["pending"] * 3


async def test_stdin_json_output_and_the_options_of_one_enqueue(
    invoke: Invoke, job_client: JobClient, arq_redis: ArqRedis
) -> None:
    text = '{"value": 1}\n{"value": 2}\n'
    result = await invoke(
        "enqueue", "noop", "--json-lines", "-", "--delay", "60", "--queue", "high", "-o", "json", input=text
    )
    shown = output_json(result)
    assert [job["status"] for job in shown] == ["scheduled", "scheduled"]
    assert {job["task"] for job in shown} == {"noop"} and shown[0]["scheduled_for"] == shown[1][
        "scheduled_for"
    ]
    assert set(shown[0]) == {"job_id", "task", "status", "scheduled_for", "retry_of", "idempotent_replay"}
    ids = [job["job_id"] for job in shown]
    assert {(await job_client.status(job_id)).queue for job_id in ids} == {"high"}
    assert await arq_redis.zcard(Keys("unit").queue("high")) == 2


async def test_a_bad_line_is_named_by_its_number_and_nothing_is_enqueued(
    invoke: Invoke, arq_redis: ArqRedis, tmp_path: Path
) -> None:
    good = '{"url": "https://example.com/hook", "payload": {}}'
    source = lines_file(tmp_path, good, "", good, '{"url": "nope", "payload": {}}', '{"payload": {}}')
    result = await invoke("enqueue", "send_webhook", "--json-lines", source)
    assert_error(
        result,
        ExitCode.INVALID_INPUT,
        "invalid input for task 'send_webhook': line 4: url: Input should be a valid URL, relative URL "
        "without a base; line 5: url: Field required",
    )
    not_json = lines_file(tmp_path, good, "{oops", name="broken.jsonl")
    assert_error(
        await invoke("enqueue", "send_webhook", "--json-lines", not_json),
        ExitCode.INVALID_INPUT,
        f"--json-lines {not_json}: line 2 is not valid JSON: Expecting property name enclosed in double "
        "quotes at line 1 column 2; nothing was enqueued",
    )
    assert await arq_redis.zcard(QUEUE) == 0


async def test_mistakes_of_the_command_itself(invoke: Invoke, arq_redis: ArqRedis, tmp_path: Path) -> None:
    source = lines_file(tmp_path, "{}")
    assert_error(
        await invoke("enqueue", "noop", "--json", "{}", "--json-lines", source),
        ExitCode.USAGE,
        "give the input by --json or by --json-lines, not both",
    )
    assert_error(
        await invoke("enqueue", "noop", "--json-lines", source, "--wait"),
        ExitCode.USAGE,
        "--wait follows one job: it does not go with --json-lines",
    )
    missing = str(tmp_path / "missing.jsonl")
    assert_error(
        await invoke("enqueue", "noop", "--json-lines", missing),
        ExitCode.INVALID_INPUT,
        f"--json-lines {missing}: No such file or directory",
    )
    empty = lines_file(tmp_path, "", " ", name="empty.jsonl")
    assert_error(
        await invoke("enqueue", "noop", "--json-lines", empty),
        ExitCode.INVALID_INPUT,
        f"--json-lines {empty} has no lines: nothing was enqueued",
    )
    assert (await invoke("enqueue", "nope", "--json-lines", source)).exit_code == ExitCode.NOT_FOUND
    assert await arq_redis.zcard(QUEUE) == 0


async def test_a_long_file_goes_in_batches_each_with_its_own_idempotency_key(
    invoke: Invoke, arq_redis: ArqRedis, tmp_path: Path
) -> None:
    count = MAX_BATCH_JOBS + 5
    source = lines_file(tmp_path, *(json.dumps({"value": n}) for n in range(count)))
    first = await invoke("enqueue", "noop", "--json-lines", source, "--idempotency-key", "import-1")
    ids = first.stdout.splitlines()
    assert (first.exit_code, len(ids), len(set(ids))) == (0, count, count)
    assert await stored_values(arq_redis, [ids[0], ids[MAX_BATCH_JOBS - 1], ids[MAX_BATCH_JOBS], ids[-1]]) == [
        0, MAX_BATCH_JOBS - 1, MAX_BATCH_JOBS, count - 1
    ]  # fmt: skip
    # run again: the same jobs, none new
    again = await invoke(
        "enqueue", "noop", "--json-lines", source, "--idempotency-key", "import-1", "-o", "json"
    )
    shown = output_json(again)
    assert [job["job_id"] for job in shown] == ids and all(job["idempotent_replay"] for job in shown)
    assert await arq_redis.zcard(QUEUE) == count


async def test_a_batch_refused_after_others_went_in_prints_them_and_says_so(
    invoke: Invoke, arq_redis: ArqRedis, tmp_path: Path
) -> None:
    # the second batch is not storable as it is (an integer beyond 64 bits): the first stays
    lines = [json.dumps({"value": n}) for n in range(MAX_BATCH_JOBS + 1)]
    source = lines_file(tmp_path, *lines, '{"value": 100000000000000000000000}')
    result = await invoke("enqueue", "noop", "--json-lines", source)
    assert result.exit_code == ExitCode.INVALID_INPUT
    assert len(result.stdout.splitlines()) == MAX_BATCH_JOBS
    assert result.stderr == (
        "error: invalid input for task 'noop': line 1002: (input): cannot be stored as JSON (Integer "
        f"exceeds 64-bit range); the jobs of the lines up to line {MAX_BATCH_JOBS} were enqueued "
        f"({MAX_BATCH_JOBS}, printed), none after\n"
    )
    assert await arq_redis.zcard(QUEUE) == MAX_BATCH_JOBS
