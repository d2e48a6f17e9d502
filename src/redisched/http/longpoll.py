"""Reserve with long polling, on the shared lease loop (:mod:`redisched.leasing`).

A waiting request holds no Redis connection: it asks Redis for jobs (within the topic's
``concurrency`` and ``rate``, which hold for HTTP reserves as for every other consumer), and
if none are due sleeps until a put (or release, requeue, kick, resume) wakes the topic, the
next scheduled job falls due (sub-millisecond alarm on the server's clock), a limit's retry
time comes, the client goes away, the server shuts down, or ``wait`` runs out. Jobs leased
for a client that has already disconnected are released at once (unstarted). One that goes
in the instant between that check and its answer is not seen (the server drops the answer,
and ASGI says nothing): its jobs stay reserved until their ttr, as for any lost answer, so a
client that may vanish should reserve with a short ttr and touch. A leased job holds its
place under the topic's ``concurrency`` while it is reserved: its ack, release, bury or
delete, through any process, frees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from starlette.types import Receive

from ..errors import RedischedError, StaleReservation
from ..models import Job
from . import partitioned
from .runtime import Runtime

log = logging.getLogger(__name__)


async def _watch(receive: Receive, gone: asyncio.Event, kick: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            kick.set()
            return


async def _forward(event: asyncio.Event, kick: asyncio.Event) -> None:
    await event.wait()
    kick.set()


async def give_back(rt: Runtime, jobs: list[Job]) -> None:
    """Release jobs that could not be delivered, due at once, giving their attempts back."""
    for job in jobs:
        with contextlib.suppress(StaleReservation):
            try:
                await rt.client.release(job, unstarted=True)
            except RedischedError as exc:  # the job comes back when its ttr runs out
                log.warning("could not release job %r of %r: %s", job.id, job.topic, exc)


async def _gone(receive: Receive) -> bool:
    """True when the client has gone already (a look at the channel that does not wait)."""
    peek = asyncio.ensure_future(receive())
    await asyncio.sleep(0)
    if not peek.done():
        peek.cancel()
        await asyncio.gather(peek, return_exceptions=True)
        return False
    if peek.cancelled() or peek.exception() is not None:
        return False
    return bool(peek.result()["type"] == "http.disconnect")


async def _lease_at_once(
    rt: Runtime, topic: str, count: int, ttr: float | None
) -> list[Job] | None:
    """The jobs of one lease call, when the topic's limits are known to be none (else None:
    the lessee takes the limits' grant, reading them again when they are too old)."""
    limits = rt.limits.get(topic)
    if limits is None or limits.limited:
        return None
    # the service's requeue loop sweeps every topic: no sweep of its own (Operations.swept)
    call = rt.client.ops.reserve_many(topic, count, ttr=ttr, sweep=False, own=True)
    return await rt.client.execute(call)


async def reserve(
    rt: Runtime, receive: Receive, topic: str, count: int, ttr: float | None, wait: float
) -> list[Job]:
    """Lease up to ``count`` jobs of ``topic``, waiting up to ``wait`` seconds for one.

    ``receive`` is the request's ASGI receive channel, read after the body to notice a
    client that disconnects while waiting.
    """
    found = await partitioned.layout(rt, topic)
    if found is None:  # a job there at once needs none of the long poll's machinery
        jobs = await _lease_at_once(rt, topic, count, ttr)
        if jobs and wait > 0 and await _gone(receive):
            await give_back(rt, jobs)
            return []
        if jobs or (jobs is not None and wait <= 0):
            return jobs
    lessee = partitioned.lessee(rt, topic, found, ttr)  # a partitioned topic: each partition
    if wait <= 0:
        result = await lessee.exchange(count)
        if lessee.freed:  # the grant's slots: its jobs hold their places as reservations
            with contextlib.suppress(RedischedError):
                await lessee.flush()
        return result.jobs
    deadline = time.time() + wait
    await lessee.watch()
    gone = asyncio.Event()
    helpers = [
        asyncio.create_task(_watch(receive, gone, lessee.kick)),
        asyncio.create_task(_forward(rt.closing, lessee.kick)),
    ]
    turns, last = rt.turns, None
    try:
        while True:
            lessee.kick.clear()
            woke = time.monotonic()  # after the clear: a put from now on sets the kick again
            async with turns.lock(topic):  # one lease at a time per topic (turns.Turns)
                if last is None or not turns.drained_since(topic, woke):
                    began = time.monotonic()
                    last = await lessee.exchange(count)
                    if len(last.jobs) < count:
                        turns.came_back_short(topic, began)
            result = last
            if result.jobs:
                await asyncio.sleep(0)  # let the watcher see a disconnect that just happened
                if gone.is_set():
                    await give_back(rt, result.jobs)
                    return []
                return result.jobs
            if lessee.freed:  # spare slots of a grant go back at once
                await lessee.flush()
            if time.time() >= deadline or gone.is_set() or rt.closing.is_set():
                return []
            await lessee.sleep(result, until=deadline)
    finally:
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        await lessee.close()
        if lessee.freed:
            with contextlib.suppress(RedischedError):
                await lessee.flush()
