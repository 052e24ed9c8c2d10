"""The plain-ARQ side of the HTTP benchmarks: a minimal FastAPI app that enqueues with `ArqRedis
.enqueue_job` and answers `GET /jobs/{id}` from ARQ's `Job.status()` / `Job.result_info()`.

    BENCH_ARQ_REDIS_URL=... BENCH_ARQ_QUEUE=... BENCH_HTTP_PORT=8001 python -m bench.plain_app

Job ids are `<BENCH_ARQ_ID_PREFIX><uuid4 hex>` so the harness can find and delete every key a run left.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import uvicorn
from arq import ArqRedis, create_pool
from arq.connections import RedisSettings
from arq.constants import default_queue_name
from arq.jobs import Job, JobStatus
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, JsonValue

from bench.plain_arq import DEFAULT_REDIS_URL


class NoopInput(BaseModel):
    value: JsonValue = None


def get_arq(request: Request) -> ArqRedis:
    pool: ArqRedis = request.state.arq
    return pool


ArqDep = Annotated[ArqRedis, Depends(get_arq)]


def create_app(redis_url: str, queue: str, id_prefix: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        pool = await create_pool(RedisSettings.from_dsn(redis_url), default_queue_name=queue)
        try:
            yield {"arq": pool}
        finally:
            await pool.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/jobs/noop", status_code=202)
    async def enqueue_noop(body: NoopInput, arq: ArqDep) -> dict[str, str]:
        job = await arq.enqueue_job("noop", body.value, _job_id=f"{id_prefix}{uuid.uuid4().hex}")
        if job is None:
            raise RuntimeError("job id already in use")
        return {"job_id": job.job_id, "status": "queued"}

    @app.get("/jobs/{job_id}", response_model=None)
    async def job_status(job_id: str, arq: ArqDep) -> dict[str, Any] | JSONResponse:
        job = Job(job_id, arq, _queue_name=queue)
        status = await job.status()
        if status is JobStatus.not_found:
            return JSONResponse({"error": "job_not_found", "job_id": job_id}, status_code=404)
        body: dict[str, Any] = {"job_id": job_id, "status": status.value, "is_terminal": False}
        if status is JobStatus.complete:
            info = await job.result_info()
            if info is not None:
                body.update(is_terminal=True, success=info.success, result=repr(info.result))
        return body

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    app = create_app(
        os.environ.get("BENCH_ARQ_REDIS_URL", DEFAULT_REDIS_URL),
        os.environ.get("BENCH_ARQ_QUEUE", default_queue_name),
        os.environ.get("BENCH_ARQ_ID_PREFIX", ""),
    )
    port = int(os.environ.get("BENCH_HTTP_PORT", "8001"))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
