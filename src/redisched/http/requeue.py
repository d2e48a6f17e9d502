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

    One topic never stops the others: a member of the topics set that is no valid name
    (written around redisched, e.g. by ``redis-cli SADD``) is skipped and logged once, and a
    topic whose requeue fails is logged and passed over until the next sweep. An error the
    loop did not expect is logged and the loop goes on; should the task end anyway,
    :meth:`failure` says so and ``/healthz`` answers 503.

    Args:
        client: the client to sweep with.
        interval: seconds between sweeps.
    """

    def __init__(self, client: AsyncClient, interval: float) -> None:
        self.client = client
        self.interval = interval
        self.invalid_topics: list[bytes] = []
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

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
            except Exception:  # a bug must not end the sweep for the life of the process
                log.exception("requeue sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)

    def failure(self) -> str | None:
        """Why the sweep is not running although it should, or None while it runs."""
        task = self._task
        if task is None or not task.done() or self._stopping.is_set():
            return None
        exc = None if task.cancelled() else task.exception()
        return f"the requeue sweep stopped: {exc!r}" if exc else "the requeue sweep stopped"

    async def start(self) -> None:
        """Start sweeping in the background."""
        if self._task is None:
            self._stopping.clear()
            self._task = asyncio.create_task(self._run(), name="redisched-requeue")

    async def stop(self) -> None:
        """Stop sweeping."""
        if self._task is not None:
            self._stopping.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
