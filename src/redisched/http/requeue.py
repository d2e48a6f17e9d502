"""The requeue sweep: return timed-out reservations of every topic to the queue.

Requeue is idempotent and safe to run in every process (docs/design.md section 2), so each server
runs this loop over all topics, with no leader.
"""

from __future__ import annotations

import asyncio
import logging

from ..client import AsyncClient
from ..errors import RedischedError
from .background import BackgroundLoop

log = logging.getLogger(__name__)
BATCH = 1000


class RequeueLoop(BackgroundLoop):
    """Every ``interval`` seconds, requeue the expired reservations of every topic.

    One topic never stops the others: a member of the topics set that is no valid name
    (written around redisched, e.g. by ``redis-cli SADD``) is skipped and logged once, and a
    topic whose requeue fails is logged and passed over until the next sweep. An error the
    loop did not expect is logged and the loop goes on; should the task end anyway,
    :meth:`failure` says so and ``/healthz`` answers 503.

    Args:
        client: the client to sweep with.
        interval: seconds between sweeps.
        group: the app's TaskGroup to run in (None: a task of its own).
    """

    name = "the requeue sweep"
    cancel_on_stop = True  # a sweep over many topics may take long: it is safe to cut short

    def __init__(
        self, client: AsyncClient, interval: float, group: asyncio.TaskGroup | None = None
    ) -> None:
        super().__init__(group)
        self.client = client
        self.interval = interval
        self.invalid_topics: list[bytes] = []

    async def sweep(self) -> int:
        """One pass over every topic; how many reservations moved."""
        names = await self.client.execute(self.client.ops.topic_names())
        for name in names.invalid:
            if name not in self.invalid_topics:
                log.warning("skipping %r in the topics set: it is not a valid topic name", name)
        self.invalid_topics = names.invalid
        moved = 0
        for topic in names.valid:
            try:
                moved += await self._requeue(topic)
            except RedischedError as exc:
                if self._stopping.is_set():
                    raise
                log.warning("requeue of topic %r failed: %s", topic, exc)
        return moved

    async def _requeue(self, topic: str) -> int:
        moved = 0
        while True:
            count = await self.client.requeue(topic, limit=BATCH)
            moved += count
            if count < BATCH:
                return moved

    async def _pass(self) -> None:
        moved = await self.sweep()
        if moved:
            log.info("requeued %d timed-out reservations", moved)
