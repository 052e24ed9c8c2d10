"""Hard and soft time limits with a real worker."""

from __future__ import annotations

import httpx

from .conftest import Service, terminal, wait_for_status


async def test_hard_limit_stops_each_attempt_then_dead_letters(
    http: httpx.AsyncClient, worker: Service
) -> None:
    accepted = await http.post("/jobs/overrun", json={"seconds": 10, "heed_soft_limit": False})
    job_id = accepted.json()["job_id"]
    done = await wait_for_status(http, accepted.json()["status_url"], terminal, timeout_s=15)
    assert (done["status"], done["attempt"], done["max_attempts"], done["dead_lettered"]) == (
        "failed",
        2,
        2,
        True,
    )
    assert done["error"] == {
        "type": "TimeLimitExceeded",
        "message": "the attempt ran longer than the hard time limit of 1 s and was stopped",
    }
    # the task saw its soft limit (0.4 s) before the hard one stopped it, on the last attempt too
    assert done["progress"]["message"] == "soft limit reached on attempt 2"
    letter = (await http.get(f"/dead-letters/{job_id}")).json()
    assert (letter["reason"], letter["attempts"], letter["error"]["type"]) == (
        "attempts_exhausted",
        2,
        "TimeLimitExceeded",
    )


async def test_soft_limit_lets_the_task_finish_early(http: httpx.AsyncClient, worker: Service) -> None:
    accepted = await http.post("/jobs/overrun", json={"seconds": 10, "heed_soft_limit": True})
    done = await wait_for_status(http, accepted.json()["status_url"], terminal, timeout_s=10)
    assert (done["status"], done["attempt"]) == ("succeeded", 1)
    assert done["result"]["stopped_early"] is True
    assert 0.4 <= done["result"]["elapsed_s"] < 1.0
    assert done["progress"]["message"] == "soft limit reached on attempt 1"


async def test_limits_are_listed(http: httpx.AsyncClient) -> None:
    tasks = {t["name"]: t for t in (await http.get("/tasks")).json()["tasks"]}
    overrun = tasks["overrun"]
    assert (overrun["timeout_s"], overrun["soft_timeout_s"], overrun["max_attempts"]) == (1.0, 0.4, 2)
    assert (tasks["hold"]["timeout_s"], tasks["hold"]["soft_timeout_s"]) == (3600, 2880)
