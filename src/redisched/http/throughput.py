"""The throughput sampler: once a minute, every topic's totals into its 24-hour series.

Safe to run in every server process (a minute's first sample counts, see
:mod:`redisched.throughput`); it reads the totals the scripts keep and writes one sorted-set
member per topic, so the hot path pays nothing.
"""

from __future__ import annotations

import asyncio

from ..client import AsyncClient
from .background import BackgroundLoop

BATCH = 32
"""Topics read per round trip (as the metrics do: a bounded pipeline)."""


class ThroughputSampler(BackgroundLoop):
    """Every ``interval`` seconds, sample every topic's totals.

    Args:
        client: the client to read and write with.
        interval: seconds between samples (a minute: the series is per minute).
        group: the app's TaskGroup to run in (None: a task of its own).
    """

    name = "the throughput sampler"

    def __init__(
        self,
        client: AsyncClient,
        interval: float = 60.0,
        group: asyncio.TaskGroup | None = None,
    ) -> None:
        super().__init__(group)
        self.client = client
        self.interval = interval

    async def sample(self) -> int:
        """One sample of every topic; how many topics were sampled."""
        ops = self.client.ops
        names = await self.client.topics()
        minute = await self.client.execute(ops.minute())
        stats = []
        for start in range(0, len(names), BATCH):
            for name in names[start : start + BATCH]:
                # own: a partitioned topic's name and each partition are sampled apart
                stats.append(await self.client.execute(ops.stats(name, own=True)))
        await self.client.execute(ops.record_throughput(minute, stats))
        return len(stats)

    async def _pass(self) -> None:
        await self.sample()
