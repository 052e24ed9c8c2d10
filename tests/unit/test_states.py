from __future__ import annotations

import pytest

from arq_jobs._jobs.states import JobState, derive_state

NOW = 1_000_000


@pytest.mark.parametrize(
    ("success", "in_progress", "queued", "run_at_ms", "expected"),
    [
        (True, False, False, None, JobState.SUCCEEDED),
        (False, False, False, None, JobState.FAILED),
        (True, True, True, NOW + 5, JobState.SUCCEEDED),  # the result wins
        (None, True, True, NOW - 5, JobState.RUNNING),
        (None, False, True, NOW + 5, JobState.SCHEDULED),
        (None, False, True, NOW, JobState.PENDING),
        (None, False, True, NOW - 5, JobState.PENDING),
        (None, False, True, None, JobState.PENDING),
        (None, False, False, NOW, None),
    ],
)
def test_state_is_derived_from_what_redis_holds(
    success: bool | None, in_progress: bool, queued: bool, run_at_ms: int | None, expected: JobState | None
) -> None:
    got = derive_state(
        success=success, in_progress=in_progress, queued=queued, run_at_ms=run_at_ms, now_ms=NOW
    )
    assert got is expected


def test_only_succeeded_failed_and_cancelled_are_terminal() -> None:
    assert {s for s in JobState if s.is_terminal} == {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}


@pytest.mark.parametrize(
    ("success", "in_progress", "queued", "mark", "expected"),
    [
        (True, False, False, JobState.CANCELLED, JobState.CANCELLED),  # cancel wins over ARQ's result
        (None, False, True, JobState.CANCELLED, JobState.CANCELLED),
        (None, False, True, JobState.RETRYING, JobState.RETRYING),
        (None, True, True, JobState.RETRYING, JobState.RUNNING),  # the next attempt started
        (False, False, False, JobState.RETRYING, JobState.FAILED),
        (None, False, False, JobState.RETRYING, None),
    ],
)
def test_marks_add_retrying_and_cancelled(
    success: bool | None, in_progress: bool, queued: bool, mark: JobState, expected: JobState | None
) -> None:
    got = derive_state(
        success=success, in_progress=in_progress, queued=queued, run_at_ms=NOW, now_ms=NOW, marked=mark
    )
    assert got is expected


@pytest.mark.parametrize(
    ("retry_at_ms", "expected"),
    [
        (NOW + 1, JobState.RETRYING),
        (NOW, JobState.PENDING),
        (NOW - 1, JobState.PENDING),
        (None, JobState.RETRYING),
    ],
)
def test_retrying_until_the_backoff_ends_then_pending(retry_at_ms: int | None, expected: JobState) -> None:
    got = derive_state(
        success=None,
        in_progress=False,
        queued=True,
        run_at_ms=NOW - 10,
        now_ms=NOW,
        marked=JobState.RETRYING,
        retry_at_ms=retry_at_ms,
    )
    assert got is expected
