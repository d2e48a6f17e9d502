"""BullMQ's Python port (``bullmq`` on PyPI: Python over BullMQ's Lua scripts) through the
peer workload.

Configuration: ``Queue.add("noop", body, {"jobId": id})`` one call per job (awaited one after
the other); BullMQ stores job data as JSON, so the body is a 100-character str. The worker is
``bullmq.Worker`` with ``concurrency=50`` (redisched's worker default; BullMQ's is 1) and the
other options at their defaults (lock duration 30 s, stalled check every 30 s); completed jobs
are kept (BullMQ's default ``removeOnComplete: false``), as users get it. A job counts as
finished when it is in neither the ``wait`` nor the ``active`` list. Memory: ``delay`` = 1
day, ``addBulk`` of 100 jobs per call.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bullmq import Queue, Worker

from bench.peers.base import Peer, main

QUEUE = "peers"


async def noop(job: Any, token: str) -> None:
    """The no-op handler."""


class BullmqPeer(Peer):
    """BullMQ (Python) over a private redis-server."""

    name = "BullMQ (Python)"
    package = "bullmq"
    config = "Worker(concurrency=50), other options default, completed jobs kept"

    def enqueue(self, target: str, ids: list[str], body: bytes) -> None:
        """One ``add`` per job, awaited in turn."""

        async def go() -> None:
            queue = Queue(QUEUE, {"connection": target})
            text = body.decode()
            for id in ids:
                await queue.add("noop", text, {"jobId": id})
            await queue.close()

        asyncio.run(go())

    def schedule(self, target: str, ids: list[str], body: bytes) -> None:
        """``addBulk`` with a one-day delay, 100 jobs per call."""

        async def go() -> None:
            queue = Queue("later", {"connection": target})
            text = body.decode()
            for start in range(0, len(ids), 100):
                await queue.addBulk([
                    {"name": "noop", "data": text, "opts": {"jobId": id, "delay": 86_400_000}}
                    for id in ids[start : start + 100]
                ])  # fmt: skip
            await queue.close()

        asyncio.run(go())

    def remaining(self, target: str, total: int) -> int:
        """Jobs in BullMQ's ``wait`` or ``active`` list."""
        pipe = self.redis(target).pipeline(transaction=False)
        pipe.llen(f"bull:{QUEUE}:wait")
        pipe.llen(f"bull:{QUEUE}:active")
        return int(sum(pipe.execute()))

    def work(self, target: str) -> None:
        """One ``bullmq.Worker`` until SIGTERM."""

        async def go() -> None:
            Worker(QUEUE, noop, {"connection": target, "concurrency": 50})
            await asyncio.Event().wait()

        asyncio.run(go())


if __name__ == "__main__":
    main(BullmqPeer())
