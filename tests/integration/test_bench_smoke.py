"""Smoke mode of the benchmark harness (`python -m bench --smoke`): every workload runs end to end on
every system, every job is accounted for, the JSON has its structure (Redis CPU and memory per job,
the batch enqueue, the scaling factors, issue 17's targets), and nothing is left in Redis. No timing
is asserted: the sizes are far too small to mean anything."""

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
    "http-batch": ["ours"],
    "polling": SYSTEMS,
    "memory": SYSTEMS,
    "scaling": ["ours", "arq-tuned"],
}
TABLE_ROWS = [
    "1 drain    200 noop, one worker",
    "worker CPU per job",
    "Redis CPU per job (enqueue + run)",
    "2 sleep    200 × 10 ms, concurrency 32",
    "200 × 10 ms, concurrency 128",
    "3 latency  enqueue→start p50, 200/s for 2 s",
    "enqueue→start p99",
    "4 http     POST enqueue, max (one API process)",
    "POST batch of 100, 8 in flight (one API process)",
    "5 polling  200 × 10 ms, c128, no polling",
    "with 20 clients polling every 50 ms",
    "status requests served",
    "6 memory   worker peak RSS after the drain",
    "API peak RSS after the HTTP ladder",
    "Redis per finished noop job (200 jobs)",
    "7 scaling  200 noop, 1 worker process",
    "200 noop, 2 worker processes",
    "POST enqueue, 32 in flight, 2 API processes",
]
TARGETED = {
    "c128.efficiency_pct", "p50_ms", "p99_ms", "max_rps", "worker_peak_rss_mb", "worker_cpu_us_per_job",
    "redis_cpu_us_per_job", "redis_bytes_per_job", "drain_factor", "http_factor",
}  # fmt: skip
TARGETS = [
    "worker_cpu", "redis_cpu", "drain_vs_arq_tuned", "drain_vs_saq", "sleep_c128", "latency_p50",
    "latency_p99", "worker_rss", "api_rss", "redis_bytes", "http_batch", "http_max", "http_p99",
    "drain_scaling", "http_scaling",
]  # fmt: skip
VERDICTS = {"pass", "MISS", "not measured"}
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
    expected_jobs = {
        "drain": 200, "sleep": 2 * 200, "latency": 200 * 2, "polling": 2 * 200, "memory": 200, "scaling": 2 * 200
    }  # fmt: skip
    for run in runs:
        assert run["error"] is None, run
        if run["workload"] == "http":
            assert run["counts"]["accepted"] == run["counts"]["queued"] > 0, run
            assert run["details"]["steps"], run
        elif run["workload"] == "http-batch":  # 4 warm-up batches and 5 measured, 100 jobs each
            assert run["counts"] == {"accepted": 900, "queued": 900}, run
            assert run["details"]["job_ids_per_answer"] == run["details"]["batch_size"] == 100, run
            assert run["metrics"]["jobs_per_s"] == pytest.approx(run["metrics"]["rps"] * 100), run
            assert run["metrics"]["jobs_per_s"] > 0, run
        else:
            counts = run["counts"]
            assert counts["enqueued"] == counts["succeeded"] == expected_jobs[run["workload"]], run
        check_new_fields(run)
    targeted = {row["metric"] for row in doc["rows"] if row["target"]}
    assert TARGETED <= targeted

    assert [t["key"] for t in doc["targets"]] == TARGETS
    by_key = {t["key"]: t for t in doc["targets"]}
    for target in doc["targets"]:
        assert target["verdict"] in VERDICTS, target
        assert (target["measured"] is None) == (target["verdict"] == "not measured"), target
        assert {"label", "goal", "unit", "ours", "others", "workload", "metric"} <= target.keys(), target
    assert by_key["drain_vs_saq"]["verdict"] == "not measured"  # saq is not in the smoke run
    for key in set(TARGETS) - {"drain_vs_saq"}:
        assert by_key[key]["verdict"] != "not measured", by_key[key]
    assert by_key["drain_vs_arq_tuned"]["goal"] == {"op": ">=", "value": 1.5, "versus": "arq-tuned"}
    assert set(by_key["redis_bytes"]["others"]) == {"arq", "arq-tuned"}
    assert by_key["redis_bytes"]["others"]["arq"]["value"]["median"] > 0
    assert "target (issue 17)" in done.stdout
    assert "drain, one worker process, ours ÷ saq" in done.stdout

    client = redis.Redis.from_url(redis_url)
    try:
        left = [k for pattern in LEFTOVERS for k in client.scan_iter(match=pattern, count=1000)]
    finally:
        client.close()
    assert left == []


def check_new_fields(run: dict) -> None:
    """Redis CPU and memory per job, worker CPU, the scaling figures: present, of their type, sane."""
    metrics, details = run["metrics"], run["details"]
    if run["workload"] in ("drain", "memory", "http-batch", "scaling"):  # each on a Redis of its own
        redis_used = details["drain_1p"]["redis"] if run["workload"] == "scaling" else details["redis"]
        assert redis_used["redis"] == "own" and redis_used["version"], run
    if run["workload"] == "drain":
        assert isinstance(details["worker_cpu_us_per_job"], int), run
        assert details["worker_cpu_us_per_job"] == metrics["worker_cpu_us_per_job"] > 0, run
        assert details["redis_cpu_us_per_job"] == metrics["redis_cpu_us_per_job"], run
        assert 0 < metrics["redis_cpu_us_per_job"] < 1_000_000, run
    if run["workload"] == "memory":
        assert 0 < metrics["redis_bytes_per_job"] < 1_000_000, run
        assert 0 < metrics["redis_keys_per_job"] < 100, run
        assert details["jobs"] == 200, run
        for reading in ("before", "when_all_ended", "after_settle"):
            assert details[reading]["used_memory"] > details[reading]["mem_clients_normal"] >= 0, run
    if run["workload"] == "scaling":
        for n in (1, 2):
            assert metrics[f"drain_{n}p_jobs_per_s"] > 0, run
            assert details[f"drain_{n}p"]["redis_cpu_us_per_job"] > 0, run
        assert metrics["drain_factor"] > 0, run
        if run["system"] == "ours":
            assert run["counts"]["accepted"] == run["counts"]["queued"] > 0, run
            assert metrics["http_1p_rps"] > 0, run
            assert details["http_2p"]["honoured"] is (metrics["http_2p_rps"] is not None), run
            assert details["http_2p"]["process_tree"] >= 1, run
        else:
            assert "http_factor" not in metrics, run
