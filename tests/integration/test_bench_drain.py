"""Smoke mode of the drain benchmark: it runs end to end and counts every job; no timing asserted."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from .conftest import ROOT


def test_drain_smoke(redis_url: str) -> None:
    env = {**os.environ, "JOBS_REDIS_URL": redis_url}
    done = subprocess.run(
        [sys.executable, "-m", "bench.drain", "--jobs", "200", "--timeout", "60"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(
        r"drain noop: 200/200 succeeded, first start -> last finish \d+\.\d\ds = \d+ jobs/s \(one worker\)\n",
        done.stdout,
    ), done.stdout
