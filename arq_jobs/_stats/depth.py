"""The queue-depth sampler every worker runs beside its lease renewal: every `JOBS_STATS_SAMPLE_S` it
reads its queue's counts (arq_jobs._queues) and records them as one sample, unless another worker of
the queue recorded that tick's sample already (`record-depth-1.lua`): one sample per queue and tick,
however many workers serve it."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from arq_jobs._config import Settings
from arq_jobs._keys import Keys
from arq_jobs._queues import queue_stats
from arq_jobs._scripts.run import run_script
from arq_jobs._scripts.script import load_script

RECORD_DEPTH_SCRIPT = load_script("record-depth-1.lua")


@dataclass
class DepthSampler:
    """Samples one queue's depth once per tick of `settings.stats_sample_s`."""

    redis: Redis
    settings: Settings
    queue: str
    last_tick: int = -1

    @property
    def period_ms(self) -> int:
        return round(self.settings.stats_sample_s * 1000)

    def due(self, now_ms: int) -> bool:
        """Whether this worker has not looked at the tick of `now_ms` yet (and statistics are kept)."""
        kept = self.settings.stats_minutes_ttl_s or self.settings.stats_hours_ttl_s
        return bool(kept) and now_ms // self.period_ms != self.last_tick

    async def sample(self, now_ms: int) -> bool:
        """Record the tick's sample; False when another worker recorded it first."""
        tick = now_ms // self.period_ms
        self.last_tick = tick
        keys = Keys(self.settings.key_prefix)
        depth = await queue_stats(self.redis, keys, self.queue, now_ms, workers=0)
        args = RECORD_DEPTH_SCRIPT.args(
            stats_prefix=keys.stats_prefix(),
            queue=self.queue,
            tick=tick,
            now=now_ms,
            stats_minutes_ttl=self.settings.stats_minutes_ttl_s * 1000,
            stats_hours_ttl=self.settings.stats_hours_ttl_s * 1000,
            ttl_ms=3 * self.period_ms,
            depth=[depth.pending, depth.scheduled, depth.running, depth.retrying],
        )
        script_keys = RECORD_DEPTH_SCRIPT.keys(sampled=keys.stats_sampled(self.queue))
        return bool(await run_script(self.redis, RECORD_DEPTH_SCRIPT, script_keys, args))
