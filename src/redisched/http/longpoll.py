"""Reserve with long polling: wait for work on the process's single Pub/Sub listener.

A waiting request holds no Redis connection: it reads the topic's wake-up generation, asks
Redis for jobs, and if none are due sleeps on :class:`~redisched.wakeup.Wakeups` until a
put (or release, requeue, kick, resume) wakes the topic, the next scheduled job falls due,
the client goes away, the server shuts down, or ``wait`` runs out. Jobs leased for a client
that has already disconnected are released at once, so a vanished client strands nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable

from starlette.types import Receive

from ..errors import RedischedError, StaleReservation
from ..models import Job
from .runtime import Runtime

log = logging.getLogger(__name__)


async def _watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return


async def _first(*waits: Awaitable[object]) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def give_back(rt: Runtime, jobs: list[Job]) -> None:
    """Release jobs that could not be delivered, due at once, giving their attempts back."""
    for job in jobs:
        with contextlib.suppress(StaleReservation):
            try:
                await rt.client.release(job, unstarted=True)
            except RedischedError as exc:  # the job comes back when its ttr runs out
                log.warning("could not release job %r of %r: %s", job.id, job.topic, exc)


async def reserve(
    rt: Runtime, receive: Receive, topic: str, count: int, ttr: float | None, wait: float
) -> list[Job]:
    """Lease up to ``count`` jobs of ``topic``, waiting up to ``wait`` seconds for one.

    ``receive`` is the request's ASGI receive channel, read after the body to notice a
    client that disconnects while waiting.
    """
    client, wakeups = rt.client, rt.wakeups
    if wait <= 0:
        return (await client.lease(topic, count, ttr=ttr)).jobs
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    await wakeups.watch(topic)
    gone = asyncio.Event()
    watcher = asyncio.create_task(_watch_disconnect(receive, gone))
    try:
        while True:
            since = wakeups.generation(topic)
            lease = await client.lease(topic, count, ttr=ttr)
            if lease.jobs:
                await asyncio.sleep(0)  # let the watcher see a disconnect that just happened
                if gone.is_set():
                    await give_back(rt, lease.jobs)
                    return []
                return lease.jobs
            timeout = deadline - loop.time()
            if timeout <= 0 or gone.is_set() or rt.closing.is_set():
                return []
            if lease.next_due_ms is not None:
                # One millisecond late, so the job is due by Redis time when we ask again.
                due_in = max(0.0, (lease.next_due_ms - lease.now_ms) / 1000) + 0.001
                timeout = min(timeout, due_in)
            await _first(wakeups.wait(topic, since, timeout), gone.wait(), rt.closing.wait())
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
