"""Benchmarks against a real Redis and real processes: `python -m bench` (see bench/__main__.py).

systems.py     ours / plain ARQ (defaults, tuned): enqueue, worker and app commands, job timings, cleanup
harness.py     one run's processes: deployment, worker(s), API, load generators, waiting for jobs to end
workloads/     drain, sleep, latency, http, http_batch, polling, memory, scaling: one module each
loadgen.py     the HTTP load generator, open loop at a rate or closed loop (its own process)
own_redis.py   a redis-server of a run's own, and its INFO cpu / memory readings
plain_arq.py   plain ARQ's worker settings and functions; plain_app.py: its minimal FastAPI app
peer_systems.py  saq and taskiq: their own venvs (installed on first use) and agents; peers/: their code
tasks/         the `sleep` task our worker loads for the benchmarks
report.py      the tables (results; issue 17's targets) and the JSON
stats.py, machine.py, redis_target.py, processes.py: helpers
"""
