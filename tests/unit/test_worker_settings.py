from __future__ import annotations

import socket

from jobcore.serializer import dumps, loads
from workers.context import shutdown, startup
from workers.settings import worker_options
from workers.tasks import registry

from .conftest import make_settings


def test_worker_options_come_from_settings() -> None:
    settings = make_settings(
        redis_url="redis://:p%40ss%3Aw%2Frd@redis.internal:6380/3",
        worker_concurrency=32,
        poll_delay_s=0.01,
        job_timeout_s=60,
        result_ttl_s=600,
        queue_name="reports",
        shutdown_grace_s=7,
    )
    options = worker_options(settings, registry)
    redis = options["redis_settings"]
    assert (redis.host, redis.port, redis.database) == ("redis.internal", 6380, 3)
    assert redis.password == "p@ss:w/rd"  # decoded, as redis-py decodes it for the API
    assert options["queue_name"] == "unit:queue:reports"
    assert options["health_check_key"] == f"unit:queue:reports:health-check:{socket.gethostname()}"
    assert (options["max_jobs"], options["poll_delay"], options["job_timeout"]) == (32, 0.01, 360)
    assert (options["keep_result"], options["job_completion_wait"]) == (600, 7)
    assert (options["job_serializer"], options["job_deserializer"]) == (dumps, loads)
    assert (options["on_startup"], options["on_shutdown"]) == (startup, shutdown)
    assert sorted(f.name for f in options["functions"]) == ["generate_report", "noop", "send_webhook"]
    timeouts = {f.name: (f.timeout_s, f.max_tries) for f in options["functions"]}
    # ARQ's limits only back ours up: 300 s later, one try more (run_attempt dead-letters that one)
    assert timeouts == {"generate_report": (420, 4), "noop": (310, 4), "send_webhook": (330, 6)}
