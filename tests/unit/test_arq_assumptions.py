"""One test per assumption `arq_jobs._arq` makes about ARQ (numbered as in its docstring). Each
failure names the assumption and what to re-check; source hashes are those of arq 0.28.0, so any
upstream change to a method we copy or depend on is flagged, even one that looks harmless."""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import inspect
import json
import logging
import re
import time
from collections.abc import AsyncGenerator, Callable
from datetime import timedelta
from typing import Any

import arq
import arq.connections
import arq.constants
import arq.jobs
import arq.utils
import arq.worker
import pytest
from arq.connections import ArqRedis
from arq.typing import StartupShutdown
from arq.worker import Retry, Worker, func

from arq_jobs import _arq
from arq_jobs._serializer import dumps, loads

# sha256 of inspect.getsource(...) in arq 0.28.0
SOURCES = {
    "Worker.main": "45ca1591c9717466eec76e17fa958f84acf6085103d692a84ee25d9904e7f8fc",
    "Worker._poll_iteration": "f8d39d823a0a59f27a45f1c0e80bee44e16219d5072235fbc81866402298322f",
    "Worker.start_jobs": "b45797cfa40bed7fe6e9b8b8100c5f5b4144fe85112155c4e355df6ed8521f5f",
    "Worker._release_sem_dec_counter_on_complete": (
        "0ed101482e942c33a64ccbe19eb3c4d29da9497258b1ffb1380da300da9bc481"
    ),
    "Worker.run_job": "589a19059ff84ee777552dc9fa5ff76b17d6d0d7f99716d2720a2ed07ccb9607",
    "Worker.finish_job": "903f09c92830d3fd8044e19cc409074d9b62143218f73c3101a1ef5f724b22ce",
    "Worker.finish_failed_job": "3e16087f318a7acfbe79189a682d732fc43a3fce1917689e96990cb14d30bee2",
    "Worker.handle_sig": "985ff7ba01aa8f04269a46c0d1be4e86ccf1d67ef5cab3a1154a9633e7360981",
    "Worker._wait_for_tasks_to_complete": "c186389a00b11500e8644c6d050e4249488985639e6a01e40d77015400fccde8",
    "arq.utils.poll": "d8cc8542a1ab2bc3d3951428c0c21f6ec1fc42ea7bd88748232541ed98781a56",
    "ArqRedis.enqueue_job": "7da8706a747c117172047b3ae7405bd450ead0c09b5043c65325661b580b1ce1",
    "Worker.record_health": "108f4b8686c9402d52162af9db7e738df0627c6baf939cbb114ac298ac1c5d4f",
}

QUEUE = "unit:arq-assumptions:queue"


def assert_source(number: int, name: str, obj: Any, recheck: str) -> None:
    found = hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()
    assert found == SOURCES[name], (
        f"assumption {number}: {name} is not arq 0.28.0's (sha256 {found[:16]}…): "
        f"re-check {recheck} against its new source, then record the new hash here"
    )


def params(function: Callable[..., Any]) -> list[str]:
    """Parameter names, keyword-only ones starred."""
    return [
        f"*{p.name}" if p.kind is inspect.Parameter.KEYWORD_ONLY else p.name
        for p in inspect.signature(function).parameters.values()
    ]


def json_serializer(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


async def noop(ctx: dict[str, Any]) -> str:
    return "ok"


def burst_worker(redis: ArqRedis, on_startup: StartupShutdown) -> Worker:
    return Worker(
        functions=[func(noop, name="noop")],
        queue_name=QUEUE,
        redis_pool=redis,
        on_startup=on_startup,
        burst=True,
        handle_signals=False,
        poll_delay=0.01,
        job_serializer=dumps,
        job_deserializer=loads,
    )


async def run_adopted(
    redis: ArqRedis,
    monkeypatch: pytest.MonkeyPatch,
    finish_job: Callable[[Worker], _arq.FinishJob],
    before_finish_failed_job: _arq.FinishFailedJob,
) -> Worker:
    """A burst worker adopted in on_startup with ARQ's own poll and poll iteration, run until its
    queue is empty."""
    monkeypatch.setattr(arq.worker, "poll", arq.utils.poll)  # restored after the test

    async def on_startup(ctx: dict[str, Any]) -> None:
        worker = _arq.find_worker(ctx)
        assert worker is not None, "assumption 6: on_startup is given the Worker's own ctx"
        _arq.adopt(
            worker,
            lease_s=30,
            poll=arq.utils.poll,
            poll_iteration=worker._poll_iteration,
            finish_job=finish_job(worker),
            before_finish_failed_job=before_finish_failed_job,
        )

    worker = burst_worker(redis, on_startup)
    with _arq.without_redis_info():
        await asyncio.wait_for(worker.main(), 10)
    return worker


def test_1_arq_is_the_version_the_assumptions_were_read_off() -> None:
    installed = importlib.metadata.version("arq")
    assert installed == arq.VERSION == _arq.VERSION, (
        f"assumption 1: arq {installed} is installed, not {_arq.VERSION}: re-check every assumption "
        "in arq_jobs/_arq.py against its source, then set _arq.VERSION"
    )


def test_2_arq_key_names() -> None:
    found = {
        "job_key_prefix": arq.constants.job_key_prefix,
        "in_progress_key_prefix": arq.constants.in_progress_key_prefix,
        "result_key_prefix": arq.constants.result_key_prefix,
        "retry_key_prefix": arq.constants.retry_key_prefix,
        "abort_jobs_ss": arq.constants.abort_jobs_ss,
    }
    assert found == {
        "job_key_prefix": "arq:job:",
        "in_progress_key_prefix": "arq:in-progress:",
        "result_key_prefix": "arq:result:",
        "retry_key_prefix": "arq:retry:",
        "abort_jobs_ss": "arq:abort",
    }, f"assumption 2: ARQ's keys are now {found}: re-check the Lua scripts that write them beside ARQ"
    ours = (_arq.JOB_PREFIX, _arq.IN_PROGRESS_PREFIX, _arq.RESULT_PREFIX, _arq.RETRY_PREFIX, _arq.ABORT_SET)
    assert ours == tuple(found.values()), "assumption 2: _arq's key names are ARQ's"
    run_job = inspect.getsource(Worker.run_job)
    for use in ("job_key_prefix + job_id", "retry_key_prefix + job_id"):
        assert use in run_job, f"assumption 2: Worker.run_job no longer reads `{use}`"


def test_3_arq_clock_and_durations() -> None:
    assert params(arq.utils.timestamp_ms) == [] and params(arq.utils.to_ms) == ["td"], (
        "assumption 3: arq.utils.timestamp_ms() / to_ms(td) changed signature: re-check the claim's "
        "clock (arq_jobs._arq.claim_iteration) and finish_call (arq_jobs._worker.finish)"
    )
    now = _arq.timestamp_ms()
    assert isinstance(now, int) and abs(now - time.time() * 1000) < 1_000, (
        "assumption 3: arq.utils.timestamp_ms() is no longer epoch ms: the claim compares queue scores with it"
    )
    conversions = [_arq.to_ms(None), _arq.to_ms(1.5), _arq.to_ms(timedelta(seconds=2)), _arq.to_ms(0.0006)]
    assert conversions == [None, 1500, 2000, 1], (
        f"assumption 3: arq.utils.to_ms converts None, 1.5, 2 s, 0.6 ms to {conversions}, not "
        "[None, 1500, 2000, 1]: re-check finish_call (arq_jobs._worker.finish) against Worker.finish_job"
    )


async def test_4_job_data_and_how_enqueue_job_stores_it(arq_redis: ArqRedis) -> None:
    assert params(arq.jobs.serialize_job) == [
        "function_name",
        "args",
        "kwargs",
        "job_try",
        "enqueue_time_ms",
        "*serializer",
    ], "assumption 4: serialize_job's signature changed: re-check JobClient._prepare (arq_jobs._client)"
    data = json.loads(_arq.serialize_job("task", ({"n": 1},), {}, None, 123, serializer=json_serializer))
    assert data == {"t": None, "f": "task", "a": [{"n": 1}], "k": {}, "et": 123}, (
        f"assumption 4: serialize_job now makes {data}: re-check the enqueue script and "
        "arq_jobs._jobs.details, which read ARQ's job data"
    )

    def unserializable(data: dict[str, Any]) -> bytes:
        raise TypeError("no")

    with pytest.raises(_arq.SerializationError):  # assumption 4: what JobClient turns into TaskInputError
        _arq.serialize_job("task", (), {}, None, 123, serializer=unserializable)
    assert_source(4, "ArqRedis.enqueue_job", ArqRedis.enqueue_job, "arq_jobs/_scripts/lua/enqueue-4.lua")
    await arq_redis.enqueue_job("task", {"n": 1}, _job_id="job-1", _queue_name=QUEUE, _defer_by=60)
    stored = loads(await arq_redis.get(_arq.JOB_PREFIX + "job-1"))
    score = await arq_redis.zscore(QUEUE, "job-1")
    ttl = await arq_redis.pttl(_arq.JOB_PREFIX + "job-1")
    assert stored["a"] == [{"n": 1}] and score == stored["et"] + 60_000 and ttl > 86_400_000, (
        "assumption 4: ArqRedis.enqueue_job no longer stores serialize_job's data under the job key "
        "with a PX expiry and the queue entry at the run-at time (ms): re-check the enqueue script"
    )


def test_5_stored_result_fields() -> None:
    raw = arq.jobs.serialize_result(
        "task",
        (1,),
        {},
        2,
        100,
        True,
        "out",
        200,
        300,
        "ref",
        "q",
        job_id="job-1",
        serializer=json_serializer,
    )
    assert raw is not None
    assert json.loads(raw) == {
        "t": 2,
        "f": "task",
        "a": [1],
        "k": {},
        "et": 100,
        "s": True,
        "r": "out",
        "st": 200,
        "ft": 300,
        "q": "q",
        "id": "job-1",
    }, (
        "assumption 5: ARQ's stored result has other fields: re-check arq_jobs._jobs.status, "
        "_jobs.details, _worker.outcomes and the `s`/`r`/`ft` our finished-attempt events carry"
    )


async def test_6_main_gives_on_startup_its_ctx_then_polls_with_what_on_startup_left(
    arq_redis: ArqRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_source(6, "Worker.main", Worker.main, "find_worker and adopt (arq_jobs/_arq.py)")
    seen: dict[str, Any] = {}

    async def one_poll(step: float = 0.5) -> AsyncGenerator[float, None]:
        seen["step"] = step
        yield 0.0

    async def iteration() -> None:
        seen["iterations"] = seen.get("iterations", 0) + 1

    async def on_startup(ctx: dict[str, Any]) -> None:
        worker = _arq.find_worker(ctx)
        seen["found"] = worker
        assert worker is not None
        monkeypatch.setattr(arq.worker, "poll", one_poll)
        worker._poll_iteration = iteration  # type: ignore[method-assign]

    worker = burst_worker(arq_redis, on_startup)
    with _arq.without_redis_info():
        await asyncio.wait_for(worker.main(), 10)
    assert seen["found"] is worker, "assumption 6: on_startup no longer gets the Worker's own ctx dict"
    assert (seen["step"], seen["iterations"]) == (0.01, 1), (
        "assumption 6: Worker.main no longer reads arq.worker.poll and self._poll_iteration after "
        "on_startup: re-check adopt's poll and poll_iteration"
    )


def test_7_poll_is_a_module_global_of_arq_worker() -> None:
    source = inspect.getsource(arq.worker)
    imported = re.search(r"from \.utils import \(([^)]*)\)", source)
    assert imported is not None and re.search(r"\bpoll\b", imported.group(1)), (
        "assumption 7: arq.worker no longer imports `poll` from arq.utils as a module global: "
        "adopt(poll=...) would not reach Worker.main"
    )
    assert (
        params(arq.utils.poll) == ["step"]
        and inspect.signature(arq.utils.poll).parameters["step"].default == 0.5
    )
    assert_source(
        7, "arq.utils.poll", arq.utils.poll, "Wakeup.poll (arq_jobs/_worker/wakeup.py), a copy of it"
    )


async def test_8_claim_iteration_keeps_arqs_bookkeeping(arq_redis: ArqRedis) -> None:
    recheck = "arq_jobs._arq.claim_iteration, its copy"
    assert_source(8, "Worker._poll_iteration", Worker._poll_iteration, recheck)
    assert_source(8, "Worker.start_jobs", Worker.start_jobs, recheck)
    assert_source(
        8, "Worker._release_sem_dec_counter_on_complete", Worker._release_sem_dec_counter_on_complete, recheck
    )
    worker = Worker(
        functions=[func(noop, name="noop")], redis_pool=arq_redis, handle_signals=False, max_jobs=3
    )
    state = (
        type(worker.sem),
        worker.sem._value,
        worker.job_counter,
        worker.tasks,
        worker.allow_pick_jobs,
        worker.queue_read_limit,
        worker.pool,
    )
    assert state == (asyncio.BoundedSemaphore, 4, 0, {}, True, 100, arq_redis), (
        f"assumption 8: a new Worker's claim bookkeeping is {state}: re-check {recheck}"
    )
    assert params(Worker.run_job) == ["self", "job_id", "score"] and params(Worker.heart_beat) == ["self"]


def test_9_in_progress_timeout_is_only_the_claims_lease() -> None:
    uses = re.findall(r".*\bin_progress_timeout_s\b.*", inspect.getsource(Worker))
    assert [use.strip() for use in uses] == [
        "self.in_progress_timeout_s = (max_timeout or 0) + 10",
        "pipe.psetex(in_progress_key, int(self.in_progress_timeout_s * 1000), b'1')",
    ], f"assumption 9: Worker uses in_progress_timeout_s elsewhere now ({uses}): re-check adopt(lease_s=...)"


async def test_10_finish_job_ends_every_attempt_run_job_ran(
    arq_redis: ArqRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert params(Worker.finish_job) == [
        "self",
        "job_id",
        "finish",
        "result_data",
        "result_timeout_s",
        "keep_result_forever",
        "incr_score",
        "keep_in_progress",
    ], "assumption 10: Worker.finish_job's signature changed: re-check _arq.FinishJob and finish_call"
    assert_source(10, "Worker.finish_job", Worker.finish_job, "FINISH_SCRIPT and tests/unit/test_finish.py")
    calls: list[tuple[Any, ...]] = []

    def recorder(worker: Worker) -> _arq.FinishJob:
        async def finish_job(
            job_id: str,
            finish: bool,
            result_data: bytes | None,
            result_timeout_s: float | None,
            keep_result_forever: bool,
            incr_score: int | None,
            keep_in_progress: float | None,
        ) -> None:
            args = (
                job_id,
                finish,
                result_data,
                result_timeout_s,
                keep_result_forever,
                incr_score,
                keep_in_progress,
            )
            calls.append(args)
            await Worker.finish_job(worker, *args)

        return finish_job

    async def not_expected(job_id: str, result_data: bytes | None) -> None:
        raise AssertionError(f"job {job_id} failed early")

    await arq_redis.enqueue_job("noop", _job_id="job-1", _queue_name=QUEUE)
    await run_adopted(arq_redis, monkeypatch, recorder, not_expected)
    assert [(c[0], c[1], loads(c[2])["r"], *c[3:]) for c in calls] == [
        ("job-1", True, "ok", 3600, False, None, None)
    ], f"assumption 10: run_job ended the attempt with finish_job{calls}: re-check adopt(finish_job=...)"


async def test_11_finish_failed_job_ends_the_jobs_that_fail_before_running(
    arq_redis: ArqRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert params(Worker.finish_failed_job) == ["self", "job_id", "result_data"], (
        "assumption 11: Worker.finish_failed_job's signature changed: re-check adopt(before_finish_failed_job=...)"
    )
    assert_source(
        11, "Worker.finish_failed_job", Worker.finish_failed_job, "what our dead-lettering leaves to it"
    )
    failed: list[str] = []

    def arqs_own(worker: Worker) -> _arq.FinishJob:
        return worker.finish_job

    async def before(job_id: str, result_data: bytes | None) -> None:
        assert await arq_redis.exists(_arq.RESULT_PREFIX + job_id) == 0, "assumption 11: ours runs first"
        failed.append(job_id)

    await arq_redis.enqueue_job("unknown_task", _job_id="job-2", _queue_name=QUEUE)
    await run_adopted(arq_redis, monkeypatch, arqs_own, before)
    after = (
        await arq_redis.exists(_arq.RESULT_PREFIX + "job-2"),
        await arq_redis.exists(_arq.JOB_PREFIX + "job-2"),
    )
    assert (failed, after) == (["job-2"], (1, 0)), (
        f"assumption 11: a job of an unknown function went {failed} through our hook and left "
        f"(result, job data) = {after}: run_job no longer ends it with finish_failed_job"
    )


def test_12_run_job_calls_finish_job_and_counts_tries() -> None:
    assert_source(
        12,
        "Worker.run_job",
        Worker.run_job,
        "finish_job's arguments, finish_failed_job, the retry counter (GIVE_BACK_SCRIPT in "
        "arq_jobs._worker.runner), the task ctx keys and PER_JOB_LOG_FORMATS",
    )
    source = inspect.getsource(Worker.run_job)
    for use in (
        "self.finish_job(\n                job_id,\n                finish,\n                result_data,\n"
        "                result_timeout_s,\n                keep_result_forever,\n                incr_score,\n"
        "                keep_in_progress,\n            )",
        "self.finish_failed_job(job_id, result_data",
        "pipe.incr(retry_key_prefix + job_id)",
        "'job_id': job_id,",
        "'job_try': job_try,",
        "'score': score,",
    ):
        assert use in source, f"assumption 12: Worker.run_job no longer does `{use}`"


def test_13_shutdown_cancels_the_run_job_tasks() -> None:
    recheck = "Runtime.shutting_down (arq_jobs._worker.runtime) and _arq.run_job_task"
    assert_source(13, "Worker.handle_sig", Worker.handle_sig, recheck)
    assert_source(13, "Worker._wait_for_tasks_to_complete", Worker._wait_for_tasks_to_complete, recheck)
    for method in (Worker.handle_sig, Worker._wait_for_tasks_to_complete):
        assert "for t in self.tasks.values():" in inspect.getsource(method), (
            f"assumption 13: {method.__name__} no longer cancels the tasks in Worker.tasks: re-check {recheck}"
        )


def test_14_run_job_logs_per_job_lines_on_the_module_logger() -> None:
    logger = arq.worker.logger
    underlying = logger.logger if isinstance(logger, _arq.ArqWorkerLogger) else logger
    assert isinstance(underlying, logging.Logger) and underlying.name == _arq.LOGGER_NAME, (
        "assumption 14: arq.worker.logger is no longer the module logger 'arq.worker': re-check quiet_job_lines"
    )
    source = inspect.getsource(Worker.run_job)
    missing = [line for line in _arq.PER_JOB_LOG_FORMATS if f"'{line}'" not in source]
    assert not missing, (
        f"assumption 14: Worker.run_job no longer logs {missing}: re-check PER_JOB_LOG_FORMATS, or ARQ's "
        "per-job lines reach the logs again"
    )


def test_15_retry_keeps_its_defer_in_ms() -> None:
    found = [Retry(defer=1.5).defer_score, Retry(defer=timedelta(seconds=2)).defer_score, Retry().defer_score]
    assert found == [1500, 2000, None], (
        f"assumption 15: Retry(defer=1.5 / 2 s / none).defer_score is {found}: re-check _arq.retry_defer_s"
    )
    assert _arq.retry_defer_s(Retry(defer=1.5)) == 1.5 and _arq.retry_defer_s(Retry()) == 0


def test_16_main_asks_redis_for_info_through_a_module_global() -> None:
    assert "await log_redis_info(self.pool, logger.info)" in inspect.getsource(Worker.main), (
        "assumption 16: Worker.main no longer calls the module global log_redis_info: re-check "
        "_arq.without_redis_info (unit tests on fakeredis, which has no INFO)"
    )
    original = arq.worker.log_redis_info  # type: ignore[attr-defined]
    with _arq.without_redis_info():
        assert arq.worker.log_redis_info is not original  # type: ignore[attr-defined]
    assert arq.worker.log_redis_info is original  # type: ignore[attr-defined]


async def test_17_record_health_writes_once_per_interval_unless_made_due(arq_redis: ArqRedis) -> None:
    assert_source(17, "Worker.record_health", Worker.record_health, "_arq.record_health_soon")
    worker = Worker(
        functions=[func(noop, name="noop")],
        redis_pool=arq_redis,
        handle_signals=False,
        health_check_interval=3600,
        queue_name=QUEUE,
    )
    await worker.record_health()
    assert await arq_redis.exists(worker.health_check_key) == 1
    await arq_redis.delete(worker.health_check_key)
    await worker.record_health()
    assert await arq_redis.exists(worker.health_check_key) == 0, (
        "assumption 17: record_health wrote again within health_check_interval"
    )
    _arq.record_health_soon(worker)
    await worker.record_health()
    assert await arq_redis.exists(worker.health_check_key) == 1, (
        "assumption 17: zeroing Worker._last_health_check no longer makes record_health write: "
        "re-check _arq.record_health_soon"
    )


async def test_18_worker_and_check_health_open_their_pool_through_the_create_pool_global(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name, obj, digest in (
        ("arq.connections.create_pool", arq.connections.create_pool, "4eff5aaa2071f020"),
        ("async_check_health", arq.worker.async_check_health, "69284d758667daec"),
    ):
        found = hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()
        assert found.startswith(digest), (
            f"assumption 18: {name} is not arq 0.28.0's: re-check _arq.create_pool and open_pools_own_way"
        )
    assert "create_pool(" in inspect.getsource(Worker.main), (
        "assumption 18: Worker.main no longer calls create_pool"
    )
    opened: list[ArqRedis] = []

    def open_pool() -> ArqRedis:
        opened.append(ArqRedis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2))
        return opened[-1]

    monkeypatch.setattr(arq.worker, "create_pool", _arq.ARQ_CREATE_POOL)  # undone after the test
    _arq.open_pools_own_way()
    settings = _arq.OwnPoolSettings(
        host=[("127.0.0.1", 1)], sentinel=True, conn_retries=1, conn_retry_delay=0
    )
    settings.open_pool = open_pool
    with pytest.raises(Exception) as refused:
        await arq.worker.async_check_health(settings, "health", QUEUE)
    assert len(opened) == 2, "assumption 18: async_check_health did not open its pool through create_pool"
    assert "127.0.0.1:1" in str(refused.value)
    # the retry is logged as a Redis error is (arq_jobs._logs.describe_redis_error), not by its repr
    [retrying] = [r.getMessage() for r in caplog.records if r.name == "arq.connections"]
    assert re.fullmatch(
        r"redis connection error ConnectionError: Error [0-9]+ connecting to 127\.0\.0\.1:1\. .+, "
        r"1 retries remaining\.\.\.",
        retrying,
    ), retrying
