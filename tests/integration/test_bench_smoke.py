"""Smoke mode of the benchmark harness (`python -m bench --smoke`): every workload runs end to end on
every system, every job is accounted for, the JSON has its structure, and nothing is left in Redis.
No timing is asserted: the sizes are far too small to mean anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from .conftest import ROOT

SYSTEMS = ["ours", "arq", "arq-tuned"]
RUNS_BY_WORKLOAD = {
    "drain": SYSTEMS,
    "sleep": SYSTEMS,
    "latency": SYSTEMS,
    "http": ["ours", "arq"],
    "polling": SYSTEMS,
}
TABLE_ROWS = [
    "1 drain    200 noop, one worker",
    "2 sleep    200 × 10 ms, concurrency 32",
    "200 × 10 ms, concurrency 128",
    "3 latency  enqueue→start p50, 200/s for 2 s",
    "enqueue→start p99",
    "4 http     POST enqueue, max (one API process)",
    "5 polling  200 × 10 ms, c128, no polling",
    "with 20 clients polling every 50 ms",
    "status requests served",
    "6 memory   worker peak RSS after the drain",
    "API peak RSS after the HTTP ladder",
]

TARGETED = {"jobs_per_s", "c128.efficiency_pct", "p50_ms", "p99_ms", "max_rps", "worker_peak_rss_mb"}
LEFTOVERS = ("bench-*", "arq:*:bench-*")  # our deployments' prefix, plain ARQ's job ids


@pytest.mark.timeout(240)
def test_bench_smoke(redis_url: str, tmp_path: Path) -> None:
    results = tmp_path / "smoke.json"
    env = {**os.environ, "JOBS_REDIS_URL": redis_url}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--json", str(results)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=230,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    header = done.stdout.splitlines()[1].split()
    assert header[:5] == ["metric", "unit", "ours", "arq", "arq-tuned"], done.stdout
    for row in TABLE_ROWS:
        assert row in done.stdout, f"no row {row!r} in:\n{done.stdout}"
    assert "PROBLEM" not in done.stdout

    doc = json.loads(results.read_text())
    assert doc["schema"] == "arq-jobs-bench/1"
    assert {"cpu_model", "logical_cores", "ram_gb", "kernel"} <= doc["machine"].keys()
    for package in ("python", "arq", "redis-py", "redis-server", "fastapi", "uvicorn"):
        assert doc["versions"][package], package
    assert {"date", "git_commit", "options", "systems", "summary", "rows"} <= doc.keys()
    assert doc["options"]["smoke"] is True
    assert doc["problems"] == []

    runs = doc["runs"]
    for workload, systems in RUNS_BY_WORKLOAD.items():
        assert sorted(r["system"] for r in runs if r["workload"] == workload) == sorted(systems), workload
    expected_jobs = {"drain": 200, "sleep": 2 * 200, "latency": 200 * 2, "polling": 2 * 200}
    for run in runs:
        assert run["error"] is None, run
        if run["workload"] == "http":
            assert run["counts"]["accepted"] == run["counts"]["queued"] > 0, run
            assert run["details"]["steps"], run
        else:
            counts = run["counts"]
            assert counts["enqueued"] == counts["succeeded"] == expected_jobs[run["workload"]], run
    targeted = {row["metric"] for row in doc["rows"] if row["target"]}
    assert TARGETED <= targeted

    client = redis.Redis.from_url(redis_url)
    try:
        left = [k for pattern in LEFTOVERS for k in client.scan_iter(match=pattern, count=1000)]
    finally:
        client.close()
    assert left == []
