"""The end of an attempt as one script: ARQ 0.28's `Worker.finish_job` transaction (assumption 10
of `arq_jobs._arq`), plus our transition of the job (event, indexes, record), so the `succeeded`
event and ARQ's result appear together — and, being one script call, it is sent in the same batch
as other jobs' ends (`arq_jobs._scripts.batch`).
"""

from __future__ import annotations

from arq_jobs import _arq
from arq_jobs._config import Settings
from arq_jobs._jobs.transitions import Transition
from arq_jobs._keys import Keys
from arq_jobs._scripts.script import Arg, load_script

FINISH_SCRIPT = load_script("finish-8.lua")


def finish_call(
    settings: Settings,
    queue_key: str,
    job_id: str,
    *,
    finish: bool,
    result_data: bytes | None,
    result_timeout_s: float | None,
    keep_result_forever: bool,
    incr_score: int | None,
    keep_in_progress: float | None,
    transition: Transition | None,
) -> tuple[list[str], list[Arg]]:
    """FINISH_SCRIPT's keys and arguments for ARQ's `finish_job` arguments and our transition."""
    keys = Keys(settings.key_prefix)
    expire = None if keep_result_forever else result_timeout_s
    result_ms = _arq.to_ms(expire)
    args = FINISH_SCRIPT.args(
        job_id=job_id,
        keep_in_progress_ms="" if keep_in_progress is None else _arq.to_ms(keep_in_progress) or 0,
        finish="1" if finish else "0",
        result=result_data or "",
        result_ttl_ms=result_ms if result_ms else "",
        incr_score=incr_score or "",
        transition=[] if transition is None else transition.args(settings),
    )
    script_keys = FINISH_SCRIPT.keys(
        in_progress=Keys.arq_in_progress(job_id),
        result=Keys.arq_result(job_id),
        retry=Keys.arq_retry(job_id),
        arq_job=Keys.arq_job(job_id),
        abort=_arq.ABORT_SET,
        queue=queue_key,
        record=keys.record(job_id),
        events=keys.events(job_id),
    )
    return script_keys, args
