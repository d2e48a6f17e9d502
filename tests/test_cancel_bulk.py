"""Bulk actions cancel running jobs: a Worker's handler learns within 100 ms (issues 12, 16).

delete_many, reschedule of a reserved job and delete_topic(force=True) (which purges reserved
jobs) each publish the cancel on the topic's wake channel, as delete and put do.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from redisched import AsyncClient, Job, Outcome, PutStatus, Worker

pytestmark = pytest.mark.asyncio

CANCEL_WITHIN = 0.1  # seconds, from the call to the handler's CancelledError (issue 12)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient.from_url(redis_url) as c:
        yield c


class Running:
    """A Worker whose async handler waits until cancelled, noting when it was."""

    def __init__(self) -> None:
        self.started: asyncio.Queue[str] = asyncio.Queue()
        self.cancelled: asyncio.Queue[tuple[str, float]] = asyncio.Queue()

    async def handler(self, job: Job) -> None:
        await self.started.put(job.id)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await self.cancelled.put((job.id, time.monotonic()))
            raise

    async def cancel_takes(self, action: Callable[[], Awaitable[Any]]) -> tuple[str, float]:
        """Run ``action`` on a running job; (the cancelled job's id, seconds it took)."""
        asked = time.monotonic()
        await action()
        job_id, at = await asyncio.wait_for(self.cancelled.get(), 5)
        return job_id, at - asked


@contextlib.asynccontextmanager
async def serving(client: AsyncClient, topic: str) -> AsyncIterator[Running]:
    """A started Worker on ``topic``; stopped gracefully on the way out."""
    running = Running()
    worker = Worker(client, {topic: running.handler}, handle_signals=False)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.wait_started(), 10)
    try:
        yield running
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)


async def test_delete_many_cancels_the_running_handler(client: AsyncClient, topic: str) -> None:
    async with serving(client, topic) as running:
        await client.put(topic, "j", b"")
        assert await asyncio.wait_for(running.started.get(), 5) == "j"
        job_id, took = await running.cancel_takes(
            lambda: client.delete_many(topic, ["j"], state="reserved")
        )
        assert job_id == "j" and took < CANCEL_WITHIN, took
        history = await client.history(topic, "j")
        assert history is not None and history.outcome is Outcome.CANCELLED
        assert history.events[-1].detail == "was running; cancel sent"


async def test_reschedule_of_a_running_job_cancels_it_and_the_new_version_runs(
    client: AsyncClient, topic: str
) -> None:
    async with serving(client, topic) as running:
        await client.put(topic, "j", b"")
        assert await asyncio.wait_for(running.started.get(), 5) == "j"

        async def reschedule() -> None:
            result = await client.reschedule(topic, "j", delay=0)
            assert result is not None and result.status is PutStatus.PENDING

        job_id, took = await running.cancel_takes(reschedule)
        assert job_id == "j" and took < CANCEL_WITHIN, took
        assert await asyncio.wait_for(running.started.get(), 5) == "j"  # version 2 runs
        live = await client.get(topic, "j")
        assert live is not None and live.version == 2
        await client.delete(topic, "j")


async def test_delete_topic_with_force_cancels_its_running_handlers(
    client: AsyncClient, topic: str
) -> None:
    async with serving(client, topic) as running:
        await client.put_many(topic, [("a", b""), ("b", b"")])
        assert {await asyncio.wait_for(running.started.get(), 5) for _ in "ab"} == {"a", "b"}
        await client.put(topic, "later", b"", delay=60)
        asked = time.monotonic()
        assert await client.delete_topic(topic, force=True) == 3
        gone = [await asyncio.wait_for(running.cancelled.get(), 5) for _ in "ab"]
        assert {job_id for job_id, _ in gone} == {"a", "b"}
        assert max(at for _, at in gone) - asked < CANCEL_WITHIN
