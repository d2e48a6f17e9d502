"""Operating a topic: listing by prefix, bulk actions, purge, topic deletion, reschedule."""

from __future__ import annotations

from typing import Any

import pytest
import redis

import redisched
from redisched import InvalidArgument, JobState, PutStatus, StaleReservation, TopicBusy, cursors
from redisched.ops import PURGE_CHUNK, SCAN_LIMIT
from tests.conftest import FakeClock

pytestmark = pytest.mark.asyncio


async def all_pages(api: Any, topic: str, state: str, **options: Any) -> tuple[list[str], int]:
    """Every id the listing gives, page after page, and how many calls it took."""
    ids: list[str] = []
    cursor, calls = None, 0
    while True:
        page = await api.jobs(topic, state, cursor=cursor, **options)
        calls += 1
        ids += [job.id for job in page.jobs]
        if page.cursor is None:
            return ids, calls
        cursor = page.cursor


async def test_every_state_pages_in_its_order_with_and_without_prefix(
    api: Any, topic: str, clock: FakeClock
) -> None:
    await api.put_many(topic, [(f"order-{i:02d}", b"") for i in range(12)], delay=100)
    await api.put_many(topic, [(f"user-{i:02d}", b"") for i in range(12)], delay=50)
    await api.put_many(topic, [(f"order-r{i}", b"") for i in range(3)])
    ids, _ = await all_pages(api, topic, "scheduled", limit=5)
    assert ids == [f"user-{i:02d}" for i in range(12)] + [f"order-{i:02d}" for i in range(12)]
    ids, calls = await all_pages(api, topic, "scheduled", prefix="order-", limit=5)
    assert ids == [f"order-{i:02d}" for i in range(12)] and calls == 3
    clock.advance(60)  # the user- jobs are due: listed as ready, after the promoted ones
    ids, _ = await all_pages(api, topic, "ready", limit=4)
    assert ids == [f"order-r{i}" for i in range(3)] + [f"user-{i:02d}" for i in range(12)]
    ids, _ = await all_pages(api, topic, "ready", prefix="user-1", limit=4)
    assert ids == ["user-10", "user-11"]
    assert (await api.jobs(topic, "ready", prefix="nobody")).jobs == []
    held = await api.reserve_many(topic, 2)
    assert [j.id for j in (await api.jobs(topic, "reserved", prefix="order-r")).jobs] == [
        j.id for j in held
    ]
    for job in held:
        await api.bury(job, reason="x")
    dead = await api.jobs(topic, "dead", prefix="order")
    assert [j.id for j in dead.jobs] == ["order-r1", "order-r0"]  # most recent death first


async def test_a_prefix_page_examines_a_bounded_number_of_jobs(api: Any, topic: str) -> None:
    await api.put_many(topic, [(f"noise-{i:05d}", b"") for i in range(SCAN_LIMIT + 10)])
    await api.put(topic, "zz-needle", b"")
    first = await api.jobs(topic, "ready", prefix="zz-", limit=10)
    assert first.jobs == [] and first.cursor is not None
    _, _, last = cursors.decode(topic, "ready", first.cursor)
    assert last.endswith(f"noise-{SCAN_LIMIT - 1:05d}".encode())  # went as far as allowed
    second = await api.jobs(topic, "ready", prefix="zz-", limit=10, cursor=first.cursor)
    assert [j.id for j in second.jobs] == ["zz-needle"] and second.cursor is None


async def test_delete_many_acts_only_on_jobs_still_in_the_listed_state(
    api: Any, topic: str
) -> None:
    await api.put_many(topic, [("a", b""), ("b", b""), ("c", b"")])
    listed = [j.id for j in (await api.jobs(topic, "ready")).jobs]
    moved = await api.reserve(topic)  # "a" leaves the ready state after it was listed
    assert await api.delete_many(topic, [*listed, "missing"], state="ready") == 2
    assert await api.get(topic, "b") is None and await api.get(topic, "c") is None
    assert (await api.get(topic, moved.id)).state is JobState.RESERVED
    assert await api.delete_many(topic, [moved.id]) == 1  # no state: any state
    with pytest.raises(StaleReservation):
        await api.ack(moved)


async def test_kick_by_ids_moves_only_the_dead_ones(api: Any, topic: str) -> None:
    await api.put_many(topic, [("d1", b""), ("d2", b""), ("d3", b""), ("live", b"")])
    for job in await api.reserve_many(topic, 3):
        await api.bury(job)
    assert await api.kick(topic, ids=["d1", "d3", "live", "missing"]) == 2
    assert (await api.get(topic, "d1")).state is JobState.READY
    assert (await api.get(topic, "d2")).state is JobState.DEAD
    with pytest.raises(InvalidArgument, match="ids"):
        await api.kick(topic, "d2", ids=["d2"])


async def test_purge_deletes_one_state_in_chunks_and_never_running_jobs(
    api: Any, topic: str, clock: FakeClock
) -> None:
    count = PURGE_CHUNK * 2 + 7
    await api.put_many(topic, [(f"s{i}", b"x") for i in range(count)], delay=60)
    await api.put_many(topic, [(f"r{i}", b"") for i in range(5)])
    held = await api.reserve(topic)
    seen: list[tuple[int, int]] = []
    deleted = await api.purge(topic, "scheduled", progress=lambda d, left: seen.append((d, left)))
    assert deleted == count
    assert seen == [(PURGE_CHUNK, count - PURGE_CHUNK), (2 * PURGE_CHUNK, 7), (count, 0)]
    stats = await api.stats(topic)
    assert (stats.scheduled, stats.ready, stats.reserved) == (0, 4, 1)
    with pytest.raises(InvalidArgument, match="state"):
        await api.purge(topic, "reserved")
    await api.put(topic, "due-later", b"", delay=5)
    clock.advance(5)  # due but not promoted: purged with the ready jobs
    assert await api.purge(topic, JobState.READY) == 5
    assert await api.get(topic, "due-later") is None
    await api.ack(held)  # the running job was left alone


async def test_delete_topic_refuses_running_jobs_unless_forced(
    api: Any, topic: str, raw_redis: redis.Redis
) -> None:
    await api.put_many(topic, [(f"j{i}", b"") for i in range(30)])
    await api.configure(topic, ttr=5, max_attempts=3)
    held = await api.reserve(topic)
    with pytest.raises(TopicBusy) as busy:
        await api.delete_topic(topic)
    assert busy.value.reserved == 1 and (await api.stats(topic)).ready == 29
    assert await api.delete_topic(topic, force=True) == 30
    assert raw_redis.keys(f"redisched:{{{topic}}}:*") == []
    assert topic not in await api.topics()
    assert (await api.config(topic)).ttr is None
    with pytest.raises(StaleReservation):
        await api.ack(held)


async def test_reschedule_keeps_the_body_and_is_a_replace(
    api: Any, topic: str, clock: FakeClock
) -> None:
    await api.put(topic, "job", b"payload", delay=3600, priority=3, ttr=7)
    result = await api.reschedule(topic, "job", delay=60, priority=-1)
    assert (result.status, result.version) == (PutStatus.REPLACED, 2)
    job = await api.get(topic, "job")
    assert job.body == b"payload" and job.priority == -1 and job.ttr == 7
    assert job.run_at.timestamp() == clock() + 60
    assert await api.reschedule(topic, "missing", delay=1) is None
    assert await api.reschedule(topic, "job", delay=1, state="dead") is None
    held = await api.reserve(topic) or None
    assert held is None
    assert await api.run_now(topic, "job") is True
    assert (await api.get(topic, "job")).state is JobState.READY
    assert await api.run_now(topic, "job") is False  # not scheduled any more
    held = await api.reserve(topic)
    pending = await api.reschedule(topic, "job", delay=30)
    assert pending.status is PutStatus.PENDING and pending.version == 4
    await api.ack(held)
    after = await api.get(topic, "job")
    assert after.state is JobState.SCHEDULED and after.body == b"payload"
    with pytest.raises(InvalidArgument, match="delay"):
        await api.reschedule(topic, "job", delay=1, run_at=clock())


async def test_bulk_run_now_and_expire(api: Any, topic: str) -> None:
    await api.put_many(topic, [("a", b""), ("b", b"")], delay=600)
    await api.put(topic, "c", b"")
    assert await api.run_now_many(topic, ["a", "b", "c"]) == 2
    held = await api.reserve_many(topic, 3)
    assert len(held) == 3
    assert await api.expire_many(topic, ["a", "c", "missing"]) == 2
    stats = await api.stats(topic)
    assert (stats.ready, stats.reserved) == (2, 1)


async def test_delete_topic_refuses_a_job_reserved_while_it_deletes(
    api: Any, topic: str, redis_url: str
) -> None:
    """A job reserved while the other jobs are being deleted is not deleted under its holder
    (the last step deletes every key: the job vanished, its holder never told)."""
    await api.put_many(topic, [(f"later{i}", b"") for i in range(3)], delay=3600)
    await api.put_many(topic, [(f"now{i}", b"") for i in range(3)])
    other = redisched.Client.from_url(redis_url)
    held: list[Any] = []

    def reserve_once(done: int, left: int) -> None:
        if not held:
            held.append(other.reserve(topic))

    with pytest.raises(TopicBusy) as busy:
        await api.delete_topic(topic, progress=reserve_once)
    assert busy.value.reserved == 1 and held[0] is not None
    stats = await api.stats(topic)
    assert (stats.scheduled, stats.ready, stats.reserved) == (0, 0, 1)
    other.ack(held[0])
