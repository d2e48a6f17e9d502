"""arq through the peer workload.

Configuration: ``ArqRedis.enqueue_job("noop", body, _job_id=id)`` one call per job (awaited
one after the other). The worker is ``arq.Worker`` with ``max_jobs=50`` (redisched's worker
default concurrency; arq's default is 10) and ``poll_delay=0.01`` s: arq reads the queue once
per poll, at most ``queue_read_limit`` (5 x max_jobs) ids, so its default 0.5 s poll delay
would cap a drain at a few hundred jobs per second and measure the sleep, not the queue.
Results kept for arq's default ``keep_result`` (1 h), as users get it. A job counts as
finished when it has left arq's queue zset. Memory: ``_defer_by=1 day``, 100 enqueues in
flight at a time.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from arq import Worker, create_pool
from arq.connections import RedisSettings
from arq.constants import default_queue_name

from bench.peers.base import Peer, main


async def noop(ctx: dict[str, Any], body: bytes) -> None:
    """The no-op handler."""


class ArqPeer(Peer):
    """arq over a private redis-server."""

    name = "arq"
    package = "arq"
    config = "Worker(max_jobs=50, poll_delay=0.01)"

    def enqueue(self, target: str, ids: list[str], body: bytes) -> None:
        """One ``enqueue_job`` per job, awaited in turn."""

        async def go() -> None:
            pool = await create_pool(RedisSettings.from_dsn(target))
            for id in ids:
                await pool.enqueue_job("noop", body, _job_id=id)
            await pool.aclose()

        asyncio.run(go())

    def schedule(self, target: str, ids: list[str], body: bytes) -> None:
        """``enqueue_job(_defer_by=1 day)``, 100 at a time."""

        async def go() -> None:
            pool = await create_pool(RedisSettings.from_dsn(target))
            later = timedelta(days=1)
            for start in range(0, len(ids), 100):
                await asyncio.gather(*(
                    pool.enqueue_job("noop", body, _job_id=id, _defer_by=later)
                    for id in ids[start : start + 100]
                ))  # fmt: skip
            await pool.aclose()

        asyncio.run(go())

    def remaining(self, target: str, total: int) -> int:
        """Jobs still in arq's queue zset (removed when a job finishes)."""
        return self.redis(target).zcard(default_queue_name)

    def work(self, target: str) -> None:
        """One ``arq.Worker`` until SIGTERM."""
        worker = Worker(
            functions=[noop],
            redis_settings=RedisSettings.from_dsn(target),
            max_jobs=50,
            poll_delay=0.01,
            handle_signals=False,
        )
        worker.run()


if __name__ == "__main__":
    main(ArqPeer())
