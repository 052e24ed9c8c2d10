"""Benchmarks against a real Redis and real processes: `python -m bench` (see bench/__main__.py).

systems.py     ours / plain ARQ (defaults, tuned): enqueue, worker and app commands, job timings, cleanup
harness.py     one run's processes: deployment, worker, API, load generators, waiting for jobs to end
workloads/     drain, sleep, latency, http, polling: one module each
loadgen.py     the open-loop HTTP load generator (its own process)
plain_arq.py   plain ARQ's worker settings and functions; plain_app.py: its minimal FastAPI app
peer_systems.py  saq and taskiq: their own venvs (installed on first use) and agents; peers/: their code
tasks/         the `sleep` task our worker loads for the benchmarks
report.py      the table and the JSON; stats.py, machine.py, redis_target.py, processes.py: helpers
"""
