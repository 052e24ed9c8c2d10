"""`python -m bench.drain`: the drain workload alone, on our system only, once (kept from before
`python -m bench`, which runs it beside plain ARQ and repeats it).

    python -m bench.drain --jobs 5000                                    # noop jobs
    python -m bench.drain --jobs 2000 --task generate_report --payload '{"rows": 1, "step_delay_s": 0.01}'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
from pathlib import Path

from arq_jobs._logs import configure_logging
from bench.harness import Harness
from bench.options import Options
from bench.redis_target import redis_target
from bench.workloads import drain


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.drain", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--task", default="noop", help="any registered task (noop, generate_report, ...)")
    parser.add_argument("--payload", default=None, help="JSON input of each job")
    parser.add_argument("--timeout", type=float, default=300, help="give up after this many seconds")
    args = parser.parse_args()
    configure_logging("WARNING", "console")
    payload = None if args.payload is None else json.loads(args.payload)
    options = Options(runs=1, jobs=args.jobs, max_wait_s=args.timeout)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    with redis_target() as target:
        harness = Harness(target.url, log_dir)
        result = asyncio.run(drain.run(harness, "ours", 1, options, args.task, payload))
    shutil.rmtree(log_dir, ignore_errors=True)
    rate = result.metrics["jobs_per_s"] or 0.0
    print(
        f"drain {args.task}: {result.counts['succeeded']}/{result.counts['enqueued']} succeeded, "
        f"first start -> last finish {result.details['seconds']:.2f}s = {rate:.0f} jobs/s (one worker)"
    )
    if result.counts["succeeded"] != result.counts["enqueued"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
