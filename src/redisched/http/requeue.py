"""The requeue sweep: return timed-out reservations of every topic to the queue.

Requeue is idempotent and safe to run in every process (docs/design.md section 2), so each server
runs this loop over all topics, with no leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..client import AsyncClient
from ..errors import RedischedError

log = logging.getLogger(__name__)
BATCH = 1000


class RequeueLoop:
    """Every ``interval`` seconds, requeue the expired reservations of every topic.

    Args:
        client: the client to sweep with.
        interval: seconds between sweeps.
    """

    def __init__(self, client: AsyncClient, interval: float) -> None:
        self.client = client
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def sweep(self) -> int:
        """One pass over every topic; how many reservations moved."""
        moved = 0
        for topic in await self.client.topics():
            while True:
                count = await self.client.requeue(topic, limit=BATCH)
                moved += count
                if count < BATCH:
                    break
        return moved

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                moved = await self.sweep()
                if moved:
                    log.info("requeued %d timed-out reservations", moved)
            except RedischedError as exc:
                # redis-py may turn a cancellation into a connection error: check the flag.
                if not self._stopping.is_set():
                    log.warning("requeue sweep failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)

    async def start(self) -> None:
        """Start sweeping in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="redisched-requeue")

    async def stop(self) -> None:
        """Stop sweeping."""
        if self._task is not None:
            self._stopping.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
