"""Schemathesis over the real API's `/openapi.json`: generated requests (a few examples per operation,
with an admin key) to the app under uvicorn on a real Redis must find no 5xx and no answer that breaks
the documented schema. No worker runs: nothing generated is executed (a generated webhook URL is never
contacted)."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

from .conftest import http_ok, service_env, start_api

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
MAX_EXAMPLES = "5"


def test_generated_requests_find_no_server_error_and_no_schema_break(
    redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    token = secrets.token_urlsafe(32)
    env = service_env(redis_url, f"{key_prefix}-schemathesis", JOBS_AUTH="keys", JOBS_ADMIN_TOKEN=token)
    api, base = start_api(env, tmp_path)
    try:
        api.wait_until(http_ok(f"{base}/health/ready"))
        done = subprocess.run(
            [
                SCHEMATHESIS,
                "run",
                f"{base}/openapi.json",
                "--checks",
                "not_a_server_error,response_schema_conformance",
                "--max-examples",
                MAX_EXAMPLES,
                "--phases",
                "examples,coverage,fuzzing",
                "--header",
                f"Authorization: Bearer {token}",
                "--request-timeout",
                "10",
                "--workers",
                "1",  # CPython 3.11's ast.parse is not thread-safe (hypothesis calls it while generating)
                # its documented 503 (jobs pending and no live worker) is what it answers here, by design
                "--exclude-operation-id",
                "health_workers",
                "--suppress-health-check",
                "all",
                "--seed",
                "15",
            ],
            cwd=tmp_path,
            env={**env, "SCHEMATHESIS_HOOKS": ""},
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        api.stop()
    (tmp_path / "schemathesis.out").write_text(done.stdout)
    summary = done.stdout[-6000:]
    assert done.returncode == 0, f"{summary}\n{done.stderr[-2000:]}\nAPI log:\n{api.log()[-3000:]}"
    assert "No issues found" in done.stdout or " passed" in done.stdout, summary
    assert "Traceback" not in api.log(), api.log()[-3000:]
