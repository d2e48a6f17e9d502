"""A burst of jobs due at once is promoted in steps the size of the leases (issue 17)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis

import redisched
from redisched import scripts
from redisched.keys import TopicKeys
from redisched.leasing import CALL_JOBS, WAKE_LEASE
from redisched.ops import Call, Step
from tests.conftest import FakeClock


def sizes(raw_redis: redis.Redis, topic: str) -> tuple[int, int]:
    """(scheduled, ready) as the zsets hold them (stats counts due jobs as ready)."""
    return (
        int(raw_redis.zcard(f"redisched:{{{topic}}}:scheduled")),
        int(raw_redis.zcard(f"redisched:{{{topic}}}:ready")),
    )


def put_due(client: redisched.Client, clock: FakeClock, topic: str, count: int) -> None:
    """``count`` jobs j000, j001... due at once, put a minute ago (scheduled, not promoted)."""
    client.put_many(topic, [(f"j{i:03d}", b"") for i in range(count)], delay=60)
    clock.advance(60)


def test_a_reserve_promotes_no_more_than_it_leases(
    redis_url: str, raw_redis: redis.Redis, topic: str, clock: FakeClock
) -> None:
    with redisched.Client.from_url(redis_url, clock=clock) as client:
        put_due(client, clock, topic, 300)
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


def test_one_reserve_script_call_promotes_and_leases_ten_thousand_due_jobs(
    redis_url: str, raw_redis: redis.Redis, topic: str, clock: FakeClock
) -> None:
    # reserve.lua takes a count up to 10,000 (the Python clients ask for 1,000 at most; other
    # callers may not): more ids than Lua's unpack() takes at once, read and removed in slices
    with redisched.Client.from_url(redis_url, clock=clock) as client:
        client.put_many(topic, [(f"j{i:05d}", b"") for i in range(10_000)], delay=60)
    script = scripts.get("reserve")
    names = TopicKeys("redisched", topic)
    keys = [names.name(part.name) for part in script.keys]
    now_ms = int((clock.now + 60) * 1000)
    reply = raw_redis.eval(script.source, len(keys), *keys, now_ms, 10_000, "", 10_000, 0)
    assert [job[0] for job in reply[3:]] == [f"j{i:05d}".encode() for i in range(10_000)]
    assert sizes(raw_redis, topic) == (0, 0)
    assert raw_redis.zcard(f"redisched:{{{topic}}}:reserved") == 10_000


def test_promoted_jobs_are_leased_by_priority_then_due_order(
    redis_url: str, raw_redis: redis.Redis, topic: str, clock: FakeClock
) -> None:
    with redisched.Client.from_url(redis_url, clock=clock) as client:
        for i, priority in enumerate([5, 0, 5, -1, 0, 5]):
            client.put(topic, f"j{i}", b"", delay=10 + i, priority=priority)
        clock.advance(60)
        # nothing ready: the 4 earliest due are promoted and leased by priority, then run_at
        leased = client.reserve_many(topic, 4)
        assert [job.id for job in leased] == ["j3", "j1", "j0", "j2"]
        assert sizes(raw_redis, topic) == (2, 0)
        assert [job.id for job in client.reserve_many(topic, 4)] == ["j4", "j5"]


def test_promoted_jobs_of_one_priority_keep_their_due_order_behind_ready_ones(
    redis_url: str, raw_redis: redis.Redis, topic: str, clock: FakeClock
) -> None:
    with redisched.Client.from_url(redis_url, clock=clock) as client:
        client.put_many(topic, [(f"due{i}", b"") for i in range(3)], delay=60, priority=1)
        client.put(topic, "late", b"", delay=61, priority=-1)
        clock.advance(61)
        client.put(topic, "now", b"", priority=1)
        # ready held a job: the promoted ones go to ready first, then the lease takes by
        # priority, then the order in which they became ready
        leased = client.reserve_many(topic, 5)
        assert [job.id for job in leased] == ["late", "now", "due0", "due1", "due2"]
        assert sizes(raw_redis, topic) == (0, 0)


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


def test_a_pull_reads_one_due_job_however_many_are_due(
    redis_url: str, raw_redis: redis.Redis, topic: str, clock: FakeClock
) -> None:
    with redisched.Client.from_url(redis_url, clock=clock) as client:
        put_due(client, clock, topic, 500)
        raw_redis.config_resetstat()
        assert client.pull(topic).id == "j000"  # type: ignore[union-attr]
        stats = raw_redis.info("commandstats")
        assert stats["cmdstat_hget"]["calls"] <= 3  # not one per due job
        assert sizes(raw_redis, topic) == (499, 0)


def test_a_pull_takes_what_a_reserve_of_one_job_would(
    redis_url: str, raw_redis: redis.Redis, clock: FakeClock
) -> None:
    plan = [("a", 30, 5), ("b", 40, 0), ("c", 10, 2), ("d", 20, 2), ("e", 50, -1), ("f", 5, 5)]
    with redisched.Client.from_url(redis_url, clock=clock) as client:
        for topic in ("pulled", "reserved"):
            for job_id, delay, priority in plan:
                client.put(topic, job_id, b"", delay=delay, priority=priority)
        clock.advance(60)
        client.put("pulled", "now", b"", priority=2)
        client.put("reserved", "now", b"", priority=2)
        pulled = [client.pull("pulled") for _ in range(8)]
        reserved = [client.reserve("reserved") for _ in range(8)]
        order = [job.id if job else None for job in pulled]
        assert order == [job.id if job else None for job in reserved]
        # each call promotes the earliest due job, then takes the best ready one: "f" (due
        # first, priority 5) waits in ready behind "now", and "b" (priority 0) for its turn
        assert order == ["now", "c", "d", "f", "b", "e", "a", None]
