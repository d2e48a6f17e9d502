"""The wake-up hub: scripts announce work, waiting tasks wake without polling."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio

import redisched
from redisched.wakeup import Wakeups


async def test_a_due_now_put_wakes_a_waiter_at_once(redis_url: str, topic: str) -> None:
    conn = redis.asyncio.Redis.from_url(redis_url)
    hub = Wakeups(conn)
    async with redisched.AsyncClient.from_url(redis_url) as client:
        await hub.watch(topic)
        since = hub.generation(topic)
        waiter = asyncio.create_task(hub.wait(topic, since, timeout=5))
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        await client.put(topic, "j", b"")
        assert await waiter is True
        assert time.perf_counter() - started < 0.05
    await hub.close()
    await conn.aclose()


async def test_a_wake_between_lease_and_wait_is_not_lost(redis_url: str, topic: str) -> None:
    conn = redis.asyncio.Redis.from_url(redis_url)
    hub = Wakeups(conn)
    async with redisched.AsyncClient.from_url(redis_url) as client:
        await hub.watch(topic)
        since = hub.generation(topic)  # read before asking Redis for work
        await client.put(topic, "j", b"")
        await asyncio.sleep(0.05)  # the message arrives before the task starts waiting
        assert await hub.wait(topic, since, timeout=0.01) is True
        assert await hub.wait(topic, hub.generation(topic), timeout=0.05) is False
    await hub.close()
    await conn.aclose()


async def test_an_earlier_scheduled_job_wakes_but_a_later_one_does_not(
    redis_url: str, topic: str
) -> None:
    conn = redis.asyncio.Redis.from_url(redis_url)
    hub = Wakeups(conn)
    async with redisched.AsyncClient.from_url(redis_url) as client:
        await hub.watch(topic)
        await client.put(topic, "first", b"", delay=60)
        await asyncio.sleep(0.05)
        since = hub.generation(topic)
        await client.put(topic, "later", b"", delay=120)
        assert await hub.wait(topic, since, timeout=0.1) is False
        await client.put(topic, "sooner", b"", delay=30)
        assert await hub.wait(topic, since, timeout=1) is True
    await hub.close()
    await conn.aclose()
