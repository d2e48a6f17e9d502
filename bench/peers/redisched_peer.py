"""redisched itself, through the same workload and driver as the peers.

Configuration: ``Client.put`` one call per job (explicit ids); the worker is
``redisched.Worker`` with its defaults (what ``redisched worker`` runs: concurrency 50, ack and
lease in one round trip) and an ``async def`` no-op handler. Memory: jobs put with
``put_many`` (1000 per call; the stored record is the same as with ``put``).
"""

from __future__ import annotations

import asyncio
import importlib.metadata

import redisched
from bench.peers.base import Peer, main

TOPIC = "peers"


async def noop(job: redisched.Job) -> None:
    """The no-op handler."""


class RedischedPeer(Peer):
    """redisched over a private redis-server."""

    name = "redisched"
    package = "redisched"
    config = "Worker defaults (concurrency 50, ack+lease per round trip), async no-op handler"

    def version(self) -> str:
        """The installed redisched version."""
        return importlib.metadata.version("redisched")

    def enqueue(self, target: str, ids: list[str], body: bytes) -> None:
        """One ``put`` per job, due now."""
        client = redisched.Client(self.redis(target))
        for id in ids:
            client.put(TOPIC, id, body)

    def schedule(self, target: str, ids: list[str], body: bytes) -> None:
        """``put_many`` a day ahead, 1000 per call."""
        client = redisched.Client(self.redis(target))
        for start in range(0, len(ids), 1000):
            client.put_many("later", [(id, body) for id in ids[start : start + 1000]], delay=86400)

    def remaining(self, target: str, total: int) -> int:
        """Jobs scheduled, ready or reserved."""
        stats = redisched.Client(self.redis(target)).stats(TOPIC)
        return int(stats.scheduled + stats.ready + stats.reserved)

    def work(self, target: str) -> None:
        """``redisched.Worker`` with its defaults until SIGTERM."""

        async def serve() -> None:
            async with redisched.AsyncClient.from_url(target) as client:
                await redisched.Worker(client, {TOPIC: noop}).run()

        asyncio.run(serve())


if __name__ == "__main__":
    main(RedischedPeer())
