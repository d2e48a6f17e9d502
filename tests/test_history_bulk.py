"""History of the bulk actions (delete_many, purge, reschedule), through both clients.

Each job a bulk script touches gets the events, finished record and feed entry the one-job
script would give it, and a running job's events say that a cancel was sent.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from redisched import JobState, Outcome, PutStatus, StaleReservation
from redisched.history import cancel_sent
from redisched.keys import TopicKeys
from tests.conftest import FakeClock
from tests.test_history import kinds

pytestmark = pytest.mark.asyncio

CANCEL_SENT = "was running; cancel sent"


async def one_in_each_state(api: Any, topic: str) -> None:
    """s scheduled, r ready, x reserved (running), d dead."""
    await api.put(topic, "x", b"")
    assert (await api.reserve(topic)).id == "x"
    await api.put(topic, "d", b"", max_attempts=1)
    await api.release(await api.reserve(topic), reason="bad")
    await api.put(topic, "s", b"", delay=60)
    await api.put(topic, "r", b"")


async def test_delete_many_ends_each_job_as_delete_does(api: Any, topic: str) -> None:
    await one_in_each_state(api, topic)
    assert await api.delete_many(topic, ["s", "r", "x", "d", "nobody"]) == 4
    ended = {i: await api.history(topic, i) for i in ("s", "r", "x", "d")}
    assert {i: h.outcome for i, h in ended.items()} == {
        "s": Outcome.CANCELLED, "r": Outcome.CANCELLED, "x": Outcome.CANCELLED,
        "d": Outcome.DEAD,
    }  # fmt: skip
    assert kinds(ended["s"]) == kinds(ended["r"]) == ["put", "deleted"]
    assert kinds(ended["x"]) == ["put", "reserved", "deleted"]
    assert ended["x"].events[-1].detail == CANCEL_SENT and cancel_sent(ended["x"].events[-1])
    assert not any(cancel_sent(e) for e in ended["s"].events)
    assert ended["s"].events[-1].detail is None
    assert kinds(ended["d"]) == ["put", "reserved", "dead", "deleted"]
    assert ended["d"].last_error == "bad"
    deleted = [(e.id, e.detail) for e in await api.events(topic) if e.kind.value == "deleted"]
    assert deleted == [("s", None), ("r", None), ("x", CANCEL_SENT), ("d", None)]
    page = await api.finished(topic)
    assert {f.id for f in page.jobs} == {"s", "r", "x", "d"}
    assert await api.put(topic, "s", b"") is not None  # a new version, after the finished one
    assert (await api.get(topic, "s")).version == 2


async def test_delete_many_with_a_state_leaves_the_others_untouched(api: Any, topic: str) -> None:
    await one_in_each_state(api, topic)
    assert await api.delete_many(topic, ["s", "r", "x"], state="reserved") == 1
    assert kinds(await api.history(topic, "s")) == ["put"]
    assert (await api.history(topic, "s")).outcome is None
    assert (await api.history(topic, "x")).outcome is Outcome.CANCELLED


async def test_delete_many_keeps_a_waiting_replacements_version(api: Any, topic: str) -> None:
    await api.put(topic, "x", b"1")
    job = await api.reserve(topic)
    assert (await api.put(topic, "x", b"2", replace=True)).status is PutStatus.PENDING
    assert await api.delete_many(topic, ["x"]) == 1
    history = await api.history(topic, "x")
    assert history.version == 2 and kinds(history) == ["put", "reserved", "replaced", "deleted"]
    assert history.events[2].detail == "version 2 waits for the running attempt; cancel sent"
    with pytest.raises(StaleReservation):
        await api.ack(job)


async def test_purge_ends_each_job_with_a_purged_event(api: Any, topic: str) -> None:
    await one_in_each_state(api, topic)
    await api.put(topic, "s2", b"", delay=120)
    assert await api.purge(topic, "scheduled") == 2
    assert await api.purge(topic, "ready") == 1
    assert await api.purge(topic, "dead") == 1
    deleted, left, *_ = await api.execute(api.ops.purge_chunk(topic, "reserved", force=True))
    assert (deleted, left) == (1, 0)
    for job_id, outcome, detail in (
        ("s", Outcome.CANCELLED, "purged"),
        ("s2", Outcome.CANCELLED, "purged"),
        ("r", Outcome.CANCELLED, "purged"),
        ("d", Outcome.DEAD, "purged"),
        ("x", Outcome.CANCELLED, "purged; " + CANCEL_SENT),
    ):
        history = await api.history(topic, job_id)
        assert history is not None and history.outcome is outcome, job_id
        assert history.events[-1].kind.value == "deleted"
        assert history.events[-1].detail == detail
    assert (await api.history(topic, "d")).last_error == "bad"
    feed = [(e.id, e.kind.value) for e in await api.events(topic, limit=1000)]
    assert feed[-5:] == [
        ("s", "deleted"), ("s2", "deleted"), ("r", "deleted"), ("d", "deleted"),
        ("x", "deleted"),
    ]  # fmt: skip
    stats = await api.stats(topic)
    assert (stats.scheduled, stats.ready, stats.reserved, stats.dead) == (0, 0, 0, 0)


async def test_a_large_purge_chunk_writes_its_feed_in_bounded_entries(
    api: Any, topic: str, raw_redis: redis.Redis
) -> None:
    await api.put_many(topic, [(f"j{i}", b"") for i in range(1200)], delay=60)
    feed_key = TopicKeys("redisched", topic).name("feed")
    before = raw_redis.xlen(feed_key)
    deleted, left, *_ = await api.execute(api.ops.purge_chunk(topic, "scheduled", limit=1200))
    assert (deleted, left) == (1200, 0)
    assert raw_redis.xlen(feed_key) - before == 6  # 200 events per entry
    assert len(await api.events(topic, limit=1000)) == 1000
    assert (await api.history(topic, "j1199")).outcome is Outcome.CANCELLED


async def test_purge_with_history_off_counts_but_records_nothing(
    api: Any, topic: str, raw_redis: redis.Redis
) -> None:
    await api.configure(topic, history=False)
    await api.put(topic, "a", b"", delay=60)
    assert await api.purge(topic, "scheduled") == 1
    assert await api.history(topic, "a") is None
    meta = TopicKeys("redisched", topic).name("meta")
    assert raw_redis.hget(meta, "finished_cancelled") == b"1"


async def test_reschedule_keeps_the_events_and_adds_replaced(
    api: Any, topic: str, clock: FakeClock
) -> None:
    await api.put(topic, "a", b"body", delay=60)
    result = await api.reschedule(topic, "a", delay=5)
    assert result.status is PutStatus.REPLACED and result.version == 2
    history = await api.history(topic, "a")
    assert kinds(history) == ["put", "replaced"] and history.version == 2
    assert history.events[-1].detail == "rescheduled"
    clock.advance(5)
    job = await api.reserve(topic)
    assert job.id == "a" and job.body == b"body"
    await api.release(job, reason="again")
    assert await api.run_now(topic, "a") is False  # ready already: not scheduled
    assert (await api.reschedule(topic, "a", delay=0)).version == 3
    history = await api.history(topic, "a")
    assert kinds(history) == ["put", "replaced", "reserved", "retried", "replaced"]
    assert history.last_error is None


async def test_reschedule_of_a_running_job_says_the_cancel_was_sent(api: Any, topic: str) -> None:
    await api.put(topic, "a", b"body")
    job = await api.reserve(topic)
    result = await api.reschedule(topic, "a", delay=0)
    assert result.status is PutStatus.PENDING and result.version == 2
    history = await api.history(topic, "a")
    assert kinds(history) == ["put", "reserved", "replaced"]
    assert history.events[-1].detail == (
        "rescheduled: version 2 waits for the running attempt; cancel sent"
    )
    assert history.version == 2
    await api.release(job, unstarted=True)  # the Worker does this when cancelled
    live = await api.get(topic, "a")
    assert live.version == 2 and live.state is JobState.READY
    history = await api.history(topic, "a")
    assert kinds(history) == ["put", "reserved", "replaced", "released"]


async def test_expire_says_an_operator_ended_the_reservation(api: Any, topic: str) -> None:
    await api.put(topic, "a", b"", ttr=60)
    await api.reserve(topic)
    assert await api.expire(topic, "a")
    event = (await api.history(topic, "a")).events[-1]
    assert event.kind.value == "requeued"
    assert event.detail == "reservation expired by an operator; cancel sent"
    assert cancel_sent(event)
