"""limit.lua: delivery slots and a token bucket per topic, shared by every process (real Redis)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest
import redis.asyncio

from redisched import AsyncClient, scripts
from redisched.limits import Grant, ack_and_grant, limit_step
from redisched.ops import Operations
from tests.conftest import FakeClock


def test_the_step_follows_the_script_header() -> None:
    step = limit_step(Operations(), "orders", 3, 1000, ["7", "8"])
    header = scripts.get("limit")
    assert step.keys == tuple(f"redisched:{{orders}}:{p.name}" for p in header.keys)
    assert len(step.args) == len(header.argv) - 1 + 2
    assert step.args[1:] == (3, 1000, "7", "8")


@pytest.fixture
async def fast(redis_url: str, clock: FakeClock) -> AsyncIterator[AsyncClient]:
    """An async client on the hand-moved clock."""
    async with AsyncClient.from_url(redis_url, clock=clock) as client:
        yield client


async def grant(
    client: AsyncClient, topic: str, want: int, freed: tuple[str, ...] = (), hold_ms: int = 10_000
) -> Grant:
    _, result = await client._run(ack_and_grant(client.ops, topic, [], freed, want, hold_ms))
    return result


async def test_grants_no_more_than_the_due_jobs(fast: AsyncClient, topic: str) -> None:
    assert (await grant(fast, topic, 10)).granted == 0
    await fast.put_many(topic, [(f"j{i}", b"") for i in range(3)])
    await fast.put(topic, "later", b"", delay=60)
    result = await grant(fast, topic, 10)
    assert (result.granted, result.slots, result.retry_ms) == (3, [], None)
    assert result.next_due_ms == result.now_ms + 60_000


async def test_concurrency_holds_across_callers_and_a_freed_slot_wakes(
    fast: AsyncClient, topic: str, redis_url: str
) -> None:
    await fast.configure(topic, concurrency=2)
    await fast.put_many(topic, [(f"j{i}", b"") for i in range(5)])
    first = await grant(fast, topic, 5, hold_ms=30_000)
    assert first.granted == 2 and len(set(first.slots)) == 2
    assert first.retry_ms == 30_000  # the earliest slot expiry, as a fallback
    assert (await grant(fast, topic, 5)).granted == 0  # another process: nothing left
    listener = redis.asyncio.Redis.from_url(redis_url)
    pubsub = listener.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(fast.ops.keys(topic).wake_channel)
    try:
        second = await grant(fast, topic, 5, freed=(first.slots[0],))
        message = None
        for _ in range(20):  # the first read may be the subscription's confirmation
            message = await pubsub.get_message(timeout=0.1)
            if message is not None:
                break
        assert message is not None and message["data"] == b"0"  # the waiter is woken
        assert second.granted == 1 and second.slots[0] not in first.slots
    finally:
        await pubsub.aclose()
        await listener.aclose()


async def test_slots_of_a_crashed_holder_expire(
    fast: AsyncClient, topic: str, clock: FakeClock
) -> None:
    await fast.configure(topic, concurrency=1)
    await fast.put_many(topic, [("a", b""), ("b", b"")])
    assert (await grant(fast, topic, 2, hold_ms=5_000)).granted == 1
    clock.advance(4.9)
    assert (await grant(fast, topic, 2)).granted == 0
    clock.advance(0.2)
    assert (await grant(fast, topic, 2)).granted == 1


async def test_rate_is_a_token_bucket(fast: AsyncClient, topic: str, clock: FakeClock) -> None:
    await fast.configure(topic, rate=20.0)  # burst: 2 tokens
    await fast.put_many(topic, [(f"j{i}", b"") for i in range(50)])
    assert (await grant(fast, topic, 10)).granted == 2
    empty = await grant(fast, topic, 10)
    assert empty.granted == 0 and empty.retry_ms == 50
    clock.advance(0.05)
    assert (await grant(fast, topic, 10)).granted == 1
    clock.advance(10)  # the bucket never holds more than the burst
    assert (await grant(fast, topic, 10)).granted == 2
    total = 0
    for _ in range(20):  # 1 s at 20/s
        clock.advance(0.05)
        total += (await grant(fast, topic, 10)).granted
    assert total == 20


async def test_paused_topic_grants_nothing(fast: AsyncClient, topic: str) -> None:
    await fast.put(topic, "j", b"")
    await fast.pause(topic)
    assert (await grant(fast, topic, 1)).granted == 0
    await fast.resume(topic)
    assert (await grant(fast, topic, 1)).granted == 1


async def test_acks_ride_along_with_the_grant(fast: AsyncClient, topic: str) -> None:
    await fast.put_many(topic, [("a", b""), ("b", b"")])
    job = await fast.reserve(topic)
    assert job is not None
    stale = SimpleNamespace(topic=topic, id="b", token="999999")
    call = ack_and_grant(fast.ops, topic, [job, stale], [], 5, 1000)
    acked, result = await fast._run(call)
    assert acked == [True, False] and result.granted == 1
    assert await fast.get(topic, "a") is None


async def test_reservation_deadline_is_reported(fast: AsyncClient, topic: str) -> None:
    await fast.put(topic, "a", b"")
    await fast.reserve(topic, ttr=7)
    result = await grant(fast, topic, 1)
    assert result.next_timeout_ms == result.now_ms + 7_000
    await asyncio.sleep(0)
