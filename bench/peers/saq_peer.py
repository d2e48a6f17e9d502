"""SAQ through the peer workload.

Configuration: ``Queue.enqueue("noop", key=id, body=...)`` one call per job (awaited one after
the other); SAQ serializes jobs as JSON, so the 100-byte body is passed as a 100-character
str. The worker is ``saq.Worker`` with ``concurrency=50`` (redisched's worker default; SAQ's is
10) and the default ``dequeue_timeout`` (0: one blocking BLMOVE that returns at once while
jobs are queued); timers (schedule, sweep, stats) at their defaults. A job counts as finished
when it has left SAQ's ``incomplete`` set. Memory: ``scheduled`` = now + 1 day, 100 enqueues
in flight at a time.
"""

from __future__ import annotations

import asyncio
import time

from saq import Queue, Worker
from saq.types import Context

from bench.peers.base import Peer, main

QUEUE = "peers"


async def noop(ctx: Context, *, body: str) -> None:
    """The no-op handler."""


class SaqPeer(Peer):
    """SAQ over a private redis-server."""

    name = "SAQ"
    package = "saq"
    config = "Worker(concurrency=50), default dequeue_timeout and timers"

    def enqueue(self, target: str, ids: list[str], body: bytes) -> None:
        """One ``enqueue`` per job, awaited in turn."""

        async def go() -> None:
            queue = Queue.from_url(target, name=QUEUE)
            text = body.decode()
            for id in ids:
                await queue.enqueue("noop", key=id, body=text)
            await queue.disconnect()

        asyncio.run(go())

    def schedule(self, target: str, ids: list[str], body: bytes) -> None:
        """``enqueue(scheduled=now + 1 day)``, 100 at a time."""

        async def go() -> None:
            queue = Queue.from_url(target, name="later")
            text, later = body.decode(), int(time.time()) + 86_400
            for start in range(0, len(ids), 100):
                await asyncio.gather(*(
                    queue.enqueue("noop", key=id, body=text, scheduled=later)
                    for id in ids[start : start + 100]
                ))  # fmt: skip
            await queue.disconnect()

        asyncio.run(go())

    def remaining(self, target: str, total: int) -> int:
        """Jobs still in SAQ's ``incomplete`` sorted set."""
        return self.redis(target).zcard(f"saq:{QUEUE}:incomplete")

    def work(self, target: str) -> None:
        """One ``saq.Worker`` until SIGTERM."""

        async def go() -> None:
            queue = Queue.from_url(target, name=QUEUE)
            await Worker(queue, functions=[noop], concurrency=50).start()

        asyncio.run(go())


if __name__ == "__main__":
    main(SaqPeer())
