"""Every Redis key the project reads or writes: ARQ's own and ours (under `key_prefix`)."""

from __future__ import annotations

from dataclasses import dataclass

from arq_jobs import _arq


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names for one deployment; `prefix` isolates deployments (and tests) sharing a Redis."""

    prefix: str

    def queue(self, name: str) -> str:
        """ARQ's sorted set of job ids to run, scored by run-at time in ms."""
        return f"{self.prefix}:queue:{name}"

    def record(self, job_id: str) -> str:
        """Our hash per job: task, queue, timestamps, attempt, progress."""
        return f"{self.prefix}:job:{job_id}"

    def dead_letter(self, job_id: str) -> str:
        """One dead letter (JSON), kept for the dead-letter retention."""
        return f"{self.prefix}:dead:{job_id}"

    def dead_letters(self, task: str | None = None) -> str:
        """Sorted set of dead-lettered job ids by failure time (ms): all, or one task's."""
        return f"{self.prefix}:dead-letters" if task is None else f"{self.prefix}:dead-letters:task:{task}"

    def dead_letters_of_owner(self, owner: str) -> str:
        """Sorted set of one API key's dead-lettered job ids by failure time (ms)."""
        return f"{self.prefix}:dead-letters:owner:{owner}"

    def dead_letters_of_queue(self, queue: str) -> str:
        """Sorted set of one queue's dead-lettered job ids by failure time (ms)."""
        return f"{self.prefix}:dead-letters:queue:{queue}"

    def idempotency(self, digest: str) -> str:
        """Which job an Idempotency-Key created (`digest` is a hash of the key)."""
        return f"{self.prefix}:idempotency:{digest}"

    def events(self, job_id: str) -> str:
        """Stream of a job's state changes and progress updates (GET /jobs/{id}/events)."""
        return f"{self.prefix}:events:{job_id}"

    def events_wake(self, hub_id: str) -> str:
        """Stream one API process's event hub also reads: an entry added wakes its blocked XREAD when a
        stream joins (see arq_jobs._jobs.event_hub); expires a minute after the last."""
        return f"{self.prefix}:events-wake:{hub_id}"

    def index(self, kind: str, value: str | None = None) -> str:
        """Sorted set of job ids by run time (ms): `all`, one `queue:<q>`, one `task:<t>`, one
        `phase:<p>`, one `phase:<p>:queue:<q>` or one `owner:<o>` (an API key's jobs; see
        arq_jobs._jobs.transitions)."""
        return f"{self.prefix}:index:{kind}" if value is None else f"{self.prefix}:index:{kind}:{value}"

    def retry_waits(self, queue: str) -> str:
        """Sorted set of a queue's retrying jobs by when their backoff ends (ms)."""
        return f"{self.prefix}:retry-waits:{queue}"

    def workers(self) -> str:
        """Sorted set of worker ids by last heartbeat (ms)."""
        return f"{self.prefix}:workers"

    def worker(self, worker_id: str) -> str:
        """One worker's last heartbeat (JSON)."""
        return f"{self.prefix}:worker:{worker_id}"

    def workflow(self, workflow_id: str) -> str:
        """Our hash per workflow: its stages, each step's result, progress counters, cancel and
        error flags (arq_jobs._workflows.engine)."""
        return f"{self.prefix}:workflow:{workflow_id}"

    def schedule(self, name: str) -> str:
        """One schedule's last fired tick (ms) and the job it made (hash, arq_jobs._schedules.views)."""
        return f"{self.prefix}:schedule:{name}"

    def report(self, report_id: str) -> str:
        """Where `generate_report` stores the report it built."""
        return f"{self.prefix}:report:{report_id}"

    def limit(self, task: str, kind: str) -> str:
        """One task's limit state, shared by every worker (the claim script, `arq_jobs._limits`): `rate`
        (the time its next job may start, ms), `slots` (the last start time given to a held-back
        job, ms), `running` (sorted set of job ids holding a place, by lease expiry), `waiting`
        (sorted set of `<queue key>|<job id>` held back, by due time)."""
        return f"{self.prefix}:limit:{task}:{kind}"

    def api_keys(self) -> str:
        """Hash of the API keys by name: each one's JSON (scopes, expiry, the secret's SHA-256 only)."""
        return f"{self.prefix}:api-keys"

    def api_keys_used(self) -> str:
        """Hash of when each API key was last used (ms), by name."""
        return f"{self.prefix}:api-keys:used"

    def dashboard_secret(self) -> str:
        """The random secret every API process signs the dashboard's CSRF token with (made by the first
        that needs it; without JOBS_ADMIN_TOKEN)."""
        return f"{self.prefix}:dashboard:csrf-secret"

    def stats_prefix(self) -> str:
        """What every statistics key starts with (arq_jobs._stats; the scripts' `stats_prefix`)."""
        return f"{self.prefix}:stats:"

    def stats(self, unit: str, start_s: int, scope: str) -> str:
        """One unit's statistics hash (`m` minute, `h` hour, starting at `start_s`, epoch s) of one
        scope: `jobs:<queue>:<task>` (attempts ended, run and wait histograms) or `depth:<queue>`
        (sampled depth); written by includes/stats.lua, expires JOBS_STATS_*_TTL_S after the unit."""
        return f"{self.prefix}:stats:{unit}:{start_s}:{scope}"

    def stats_scopes(self) -> str:
        """Sorted set of the `<queue>:<task>` pairs with statistics, by when last noted (ms)."""
        return f"{self.prefix}:stats:scopes"

    def stats_sampled(self, queue: str) -> str:
        """The last tick a queue's depth was sampled at (one worker samples each tick)."""
        return f"{self.prefix}:stats:sampled:{queue}"

    @staticmethod
    def wake_channel(queue_key: str) -> str:
        """Pub/sub channel told of every job enqueued to run now on the queue `queue_key`: its
        workers poll at once instead of at their next poll."""
        return f"{queue_key}:wake"

    @staticmethod
    def arq_job(job_id: str) -> str:
        return _arq.JOB_PREFIX + job_id

    @staticmethod
    def arq_result(job_id: str) -> str:
        return _arq.RESULT_PREFIX + job_id

    @staticmethod
    def arq_in_progress(job_id: str) -> str:
        return _arq.IN_PROGRESS_PREFIX + job_id

    @staticmethod
    def arq_retry(job_id: str) -> str:
        return _arq.RETRY_PREFIX + job_id
