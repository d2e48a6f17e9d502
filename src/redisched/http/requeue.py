"""The requeue sweep: return timed-out reservations of every topic to the queue.

Requeue is idempotent and safe to run in every process (docs/design.md section 2), so each server
runs this loop over all topics, with no leader. Each pass also lists again a deleted topic
that a put overtook (see :mod:`redisched.registration`).
"""

from __future__ import annotations

import asyncio
import logging
import time

from ..client import AsyncClient
from ..errors import RedischedError
from ..ops import Call
from ..registration import DELETIONS_KEPT_SECONDS, TRUST_SECONDS
from .background import BackgroundLoop

log = logging.getLogger(__name__)
BATCH = 1000
WATCH_MARGIN = 1.0
"""Seconds a deleted topic is watched beyond :data:`TRUST_SECONDS` (a put in flight)."""


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
        self.watching: dict[tuple[str, int], float | None] = {}
        """Deletions (topic, epoch ms) -> when this sweep first saw them (monotonic); None
        once done with."""

    async def sweep(self) -> int:
        """One pass over every topic; how many reservations moved."""
        try:
            await self.relist_overtaken()
        except RedischedError as exc:  # the requeues below matter more
            if self._stopping.is_set():
                raise
            log.warning("could not read the deleted topics: %s", exc)
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

    async def relist_overtaken(self) -> list[str]:
        """List again each deleted topic that holds jobs while it is watched; which ones were
        missing from the topics set.

        A client skips the ``SADD`` of a topic it added within :data:`TRUST_SECONDS`, so a put
        that another process's delete overtook leaves its topic out of the set. Any such put
        comes within that time of the delete, so each deletion (a topic and its time) is
        watched until a pass :data:`TRUST_SECONDS` + :data:`WATCH_MARGIN` after this sweep first
        saw it; a topic deleted again is a new deletion, watched anew. A failure is logged and
        passes the deletion over until the next sweep.
        """
        client, ops = self.client, self.client.ops
        server_ms, deletions = await client.execute(
            Call.join(ops.server_time_ms(), ops.deleted_topics())
        )
        # read before trimmed, by the server's clock that scored them: a sweep as rare as
        # DELETIONS_KEPT_SECONDS still sees each deletion once
        await client.execute(ops.forget_deletions(round(server_ms - DELETIONS_KEPT_SECONDS * 1000)))
        now = time.monotonic()
        self.watching = {deletion: self.watching.get(deletion, now) for deletion in deletions}
        relisted = []
        for deletion, since in self.watching.items():
            if since is None:
                continue  # done with
            topic = deletion[0]
            try:
                if await client.execute(ops.holds_jobs(topic)):
                    if await client.execute(ops.relist(topic)):
                        relisted.append(topic)
                        log.info("topic %r was deleted, then a put overtook the delete: listed"
                                 " again", topic)  # fmt: skip
                elif now - since < TRUST_SECONDS + WATCH_MARGIN:
                    continue
            except RedischedError as exc:
                if self._stopping.is_set():
                    raise
                log.warning("could not check deleted topic %r: %s", topic, exc)
                continue
            self.watching[deletion] = None
        return relisted

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
