"""A burst of jobs due at once is promoted in steps the size of the leases (issue 17)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis

import redisched
from redisched.leasing import CALL_JOBS, WAKE_LEASE
from redisched.ops import Call, Step
from tests.conftest import FakeClock


def sizes(raw_redis: redis.Redis, topic: str) -> tuple[int, int]:
    """(scheduled, ready) as the zsets hold them (stats counts due jobs as ready)."""
    return (
        int(raw_redis.zcard(f"redisched:{{{topic}}}:scheduled")),
        int(raw_redis.zcard(f"redisched:{{{topic}}}:ready")),
    )


def test_a_reserve_promotes_no_more_than_it_leases(
    redis_url: str, raw_redis: redis.Redis, topic: str, clock: FakeClock
) -> None:
    with redisched.Client.from_url(redis_url, clock=clock) as client:
        client.put_many(topic, [(f"j{i:03d}", b"") for i in range(300)], delay=60)
        clock.advance(60)
        assert client.reserve(topic).id == "j000"  # type: ignore[union-attr]
        assert sizes(raw_redis, topic) == (299, 0)
        leased = client.reserve_many(topic, 150)
        assert [job.id for job in leased] == [f"j{i:03d}" for i in range(1, 151)]
        assert sizes(raw_redis, topic) == (149, 0)


def test_ready_jobs_go_first_and_a_reserve_still_promotes_its_count(
    redis_url: str, raw_redis: redis.Redis, topic: str, clock: FakeClock
) -> None:
    with redisched.Client.from_url(redis_url, clock=clock) as client:
        client.put_many(topic, [(f"due{i}", b"") for i in range(10)], delay=60)
        clock.advance(60)
        client.put_many(topic, [(f"now{i}", b"") for i in range(5)])
        leased = client.reserve_many(topic, 8)
        assert [job.id for job in leased] == [f"now{i}" for i in range(5)] + ["due0", "due1",
                                                                              "due2"]  # fmt: skip
        assert sizes(raw_redis, topic) == (2, 5)


def test_promote_limit_still_bounds_a_call(
    redis_url: str, raw_redis: redis.Redis, topic: str, clock: FakeClock
) -> None:
    with redisched.Client.from_url(redis_url, clock=clock, promote_limit=10) as client:
        client.put_many(topic, [(f"j{i:03d}", b"") for i in range(30)], delay=60)
        clock.advance(60)
        assert len(client.reserve_many(topic, 20)) == 10
        assert sizes(raw_redis, topic) == (20, 0)


class Spy:
    """Records the steps of every round trip a client makes."""

    def __init__(self, client: redisched.AsyncClient) -> None:
        self.trips: list[tuple[float, list[Step]]] = []
        self.execute = client.execute

    async def __call__(self, call: Call[Any], **options: Any) -> Any:
        self.trips.append((time.time(), list(call.steps)))
        return await self.execute(call, **options)

    def sizes(self, script: str) -> list[list[int]]:
        """Per round trip, the jobs of each ``script`` step (reserve: its count; ack: its jobs)."""
        found = []
        for _, steps in self.trips:
            if script == "reserve":
                sizes = [int(s.args[1]) for s in steps if s.script == "reserve"]
            else:
                sizes = [(len(s.args) - 1) // 3 for s in steps if s.script == "ack"]
            if sizes:
                found.append(sizes)
        return found


async def test_a_worker_acks_and_leases_at_most_call_jobs_per_script_call(
    redis_url: str, topic: str
) -> None:
    async with redisched.AsyncClient.from_url(redis_url) as client:
        await client.put_many(topic, [(f"j{i}", b"") for i in range(600)])
        spy = Spy(client)
        client.execute = spy  # type: ignore[method-assign]
        done = 0

        async def handler(job: redisched.Job) -> None:
            nonlocal done
            done += 1
            if done == 600:
                worker.stop()

        worker = redisched.Worker(client, {topic: handler}, concurrency=250, handle_signals=False)
        await asyncio.wait_for(worker.run(), 30)
        assert (await client.stats(topic)).total_acked == 600
    leases, acks = spy.sizes("reserve"), spy.sizes("ack")
    assert max(n for trip in leases + acks for n in trip) == CALL_JOBS
    # a round trip still acks and leases many: the calls go in one pipeline
    assert max(len(trip) for trip in leases) == 3  # 250 = 100 + 100 + 50
    assert max(sum(trip) for trip in acks) > CALL_JOBS


async def test_after_an_idle_sleep_the_first_lease_takes_one_job(
    redis_url: str, topic: str
) -> None:
    async with redisched.AsyncClient.from_url(redis_url) as client:
        spy = Spy(client)
        client.execute = spy  # type: ignore[method-assign]
        started: list[float] = []

        async def handler(job: redisched.Job) -> None:
            started.append(time.time())
            if len(started) == 40:
                worker.stop()

        worker = redisched.Worker(client, {topic: handler}, concurrency=50, handle_signals=False)
        task = asyncio.create_task(worker.run())
        await worker.wait_started()
        due = time.time() + 0.3
        await client.put_many(topic, [(f"j{i}", b"") for i in range(40)], run_at=due)
        await asyncio.wait_for(task, 30)
    woken = [steps for at, steps in spy.trips if at >= due - 0.01]  # an alarm may fire early
    leases = [[int(s.args[1]) for s in steps if s.script == "reserve"] for steps in woken]
    leases = [trip for trip in leases if trip]
    assert leases[0] == [WAKE_LEASE]
    assert [49] in leases  # then the rest of the free slots, at once
