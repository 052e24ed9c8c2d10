"""Idempotency keys: a client-chosen key that makes retrying `POST /jobs/{task}` (and
`POST /jobs/{task}/batch`) safe.

The first request with a key creates the job and stores `{job_id, task, fingerprint}` under a hash
of the key for `idempotency_ttl_s`; a later request with the same key and the same fingerprint (task,
validated input, delay/run_at, queue) gets that job back; with another fingerprint it is a conflict.
A batch's claim covers the whole batch: its fingerprint is of the inputs in order, and it lists every
job (`job_ids`) for a replay to answer with.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

KEY_MAX_LENGTH = 255
KEY_PATTERN = rf"^[\x21-\x7e]{{1,{KEY_MAX_LENGTH}}}$"


def fingerprint(
    task: str,
    payload: Any,
    delay: float | timedelta | None,
    run_at: datetime | None,
    queue: str | None = None,
    *,
    batch: bool = False,
) -> str:
    """A stable hash of what a request asks for (key order in the input does not matter); `queue`
    only when the request chose another queue than the task's own. `batch`: `payload` is the list
    of a batch's inputs (never the same request as one job's)."""
    if isinstance(delay, timedelta):
        delay = delay.total_seconds()
    request: dict[str, Any] = {
        "task": task,
        "input": payload,
        "delay": None if delay is None else float(delay),  # 60, 60.0 and 1 minute are one delay
        "run_at": round(run_at.timestamp() * 1000) if run_at else None,  # one instant, any offset
    }
    if queue is not None:  # absent otherwise: the fingerprints of requests without one stay the same
        request["queue"] = queue
    if batch:
        request["batch"] = True
    return hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """What an Idempotency-Key is bound to."""

    key: str
    fingerprint: str
    task: str
    job_id: str
    owner: str | None = None  # the API key whose key it is: two owners' keys never meet
    job_ids: tuple[str, ...] = ()  # a batch's jobs, in order (`job_id` is the first); () for one job

    @property
    def digest(self) -> str:
        scoped = self.key if self.owner is None else f"{self.owner}\n{self.key}"
        return hashlib.sha256(scoped.encode()).hexdigest()

    def to_json(self) -> bytes:
        claim = asdict(self)
        if not self.job_ids:
            del claim["job_ids"]
        return orjson.dumps(claim)

    @classmethod
    def parse(cls, raw: bytes | None) -> IdempotencyClaim | None:
        if raw is None:
            return None
        data = orjson.loads(raw)
        return cls(
            key=data["key"],
            fingerprint=data["fingerprint"],
            task=data["task"],
            job_id=data["job_id"],
            owner=data.get("owner"),
            job_ids=tuple(data.get("job_ids", ())),
        )
