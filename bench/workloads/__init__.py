"""The workloads, one module each: `run(harness, system, run, options) -> RunResult`."""
