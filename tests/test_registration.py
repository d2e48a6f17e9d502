"""A deleted topic that is put to again is listed again, by the same process or another."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

import redisched
from redisched import registration
from redisched.errors import BackendError
from redisched.http import requeue
from redisched.http.requeue import RequeueLoop
from redisched.models import JobState
from redisched.ops import Operations


@pytest.fixture
def prefix() -> str:
    """A prefix of the test's own: the sweep then sees no other test's topics."""
    return f"reg-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def two(redis_url: str, prefix: str) -> Iterator[tuple[redisched.Client, redisched.Client]]:
    """A producer and an operator: two clients, as two processes would have."""
    with (
        redisched.Client.from_url(redis_url, prefix=prefix) as producer,
        redisched.Client.from_url(redis_url, prefix=prefix) as operator,
    ):
        yield producer, operator


def deletions(raw_redis: redis.Redis, prefix: str) -> dict[bytes, float]:
    return dict(raw_redis.zrange(f"{prefix}:deleted_topics", 0, -1, withscores=True))


async def test_a_put_after_the_clients_own_delete_lists_the_topic_again(
    api: Any, topic: str
) -> None:
    await api.put(topic, "a", b"")
    assert topic in await api.topics()
    await api.delete_topic(topic)
    assert topic not in await api.topics()
    await api.put(topic, "b", b"")
    assert topic in await api.topics()


def test_a_put_after_another_process_deleted_the_topic_lists_it_again_within_the_trust(
    two: tuple[redisched.Client, redisched.Client], topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registration, "TRUST_SECONDS", 0.3)
    producer, operator = two
    producer.put(topic, "a", b"")
    operator.delete_topic(topic)
    producer.put(topic, "b", b"")  # trusts its SADD of a moment ago: the set lacks it
    assert topic not in operator.topics()
    time.sleep(0.35)
    producer.put(topic, "c", b"")
    assert topic in operator.topics()


async def test_the_sweep_lists_again_a_topic_whose_put_overtook_the_delete(
    redis_url: str, prefix: str, two: tuple[redisched.Client, redisched.Client], topic: str,
    raw_redis: redis.Redis,
) -> None:  # fmt: skip
    """The review's reproducer: the topic of the overtaking put was listed nowhere, and its
    timed-out reservation was never returned."""
    producer, operator = two
    producer.put(topic, "a", b"")
    operator.delete_topic(topic, force=True)
    assert topic.encode() in deletions(raw_redis, prefix)
    producer.put(topic, "b", b"", max_attempts=2)
    assert topic not in operator.topics()
    held = operator.reserve(topic, ttr=0.05)
    assert held is not None and held.id == "b"
    time.sleep(0.1)
    async with redisched.AsyncClient.from_url(redis_url, prefix=prefix) as service:
        sweep = RequeueLoop(service, interval=1.0)
        assert await sweep.sweep() == 1  # listed, then its reservation returned
        assert await sweep.relist_overtaken() == []  # done with that deletion
    assert topic in operator.topics()
    job = operator.get(topic, "b")
    assert job is not None and job.state is JobState.READY and job.attempts == 1


async def test_a_second_delete_is_watched_anew(
    redis_url: str, prefix: str, two: tuple[redisched.Client, redisched.Client], topic: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The review's second reproducer: the watch of the first delete ended just after the
    second, and a put that overtook the second was never listed."""
    monkeypatch.setattr(requeue, "TRUST_SECONDS", 0.2)
    monkeypatch.setattr(requeue, "WATCH_MARGIN", 0.1)
    producer, operator = two
    operator.put(topic, "first", b"")
    operator.delete_topic(topic)
    async with redisched.AsyncClient.from_url(redis_url, prefix=prefix) as service:
        sweep = RequeueLoop(service, interval=1.0)
        await sweep.relist_overtaken()  # watches the first deletion
        time.sleep(0.01)  # the second deletion gets a later time
        producer.put(topic, "x", b"")
        operator.delete_topic(topic)
        producer.put(topic, "y", b"")  # overtakes the second delete
        time.sleep(0.35)  # the first deletion's watch is over
        assert await sweep.relist_overtaken() == [topic]
    assert topic in operator.topics()


async def test_a_deleted_topic_is_watched_only_as_long_as_a_put_could_overtake_its_delete(
    redis_url: str, prefix: str, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(requeue, "TRUST_SECONDS", 0.1)
    monkeypatch.setattr(requeue, "WATCH_MARGIN", 0.1)
    with redisched.Client.from_url(redis_url, prefix=prefix) as operator:
        operator.put(topic, "a", b"")
        operator.delete_topic(topic)
        async with redisched.AsyncClient.from_url(redis_url, prefix=prefix) as service:
            sweep = RequeueLoop(service, interval=1.0)
            assert await sweep.relist_overtaken() == []
            [(watched, since)] = sweep.watching.items()
            assert watched[0] == topic and since is not None
            time.sleep(0.25)
            assert await sweep.relist_overtaken() == []
            assert sweep.watching == {watched: None}  # done with it
            operator.put(topic, "later", b"")  # listed by its own SADD: nothing to do
            assert await sweep.relist_overtaken() == []
        assert topic in operator.topics()


def test_old_deletions_are_dropped_without_a_service(
    redis_url: str, prefix: str, raw_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The set stays small with no sweep running: each deletion drops those older than
    DELETIONS_KEPT_SECONDS."""
    key = f"{prefix}:deleted_topics"
    raw_redis.zadd(key, {"ancient": 1_000, "recent": time.time() * 1000 - 1_000})
    with redisched.Client.from_url(redis_url, prefix=prefix) as operator:
        operator.put("gone", "a", b"")
        operator.delete_topic("gone")
    assert sorted(deletions(raw_redis, prefix)) == [b"gone", b"recent"]


async def test_a_failing_check_of_a_deleted_topic_does_not_stop_the_sweep(
    redis_url: str, prefix: str, two: tuple[redisched.Client, redisched.Client], topic: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    producer, operator = two
    operator.put("gone", "a", b"")
    operator.delete_topic("gone")
    producer.put(topic, "j", b"", max_attempts=3)
    assert operator.reserve(topic, ttr=0.05) is not None
    time.sleep(0.1)
    holds_jobs = Operations.holds_jobs

    def failing(self: Operations, name: str) -> Any:
        if name == "gone":
            raise BackendError("node down")
        return holds_jobs(self, name)

    monkeypatch.setattr(Operations, "holds_jobs", failing)
    async with redisched.AsyncClient.from_url(redis_url, prefix=prefix) as service:
        assert await RequeueLoop(service, interval=1.0).sweep() == 1  # the other topic's
    job = operator.get(topic, "j")
    assert job is not None and job.state is JobState.READY


async def test_a_sweep_an_hour_apart_still_sees_a_deletion(
    redis_url: str, prefix: str, topic: str, raw_redis: redis.Redis
) -> None:
    """requeue_interval may be 3,600 s: a deletion scored an hour ago (by the server's clock)
    is read before anything old is trimmed; one older than DELETIONS_KEPT_SECONDS goes."""
    with redisched.Client.from_url(redis_url, prefix=prefix) as producer:
        producer.put(topic, "a", b"")
    raw_redis.srem(f"{prefix}:topics", topic)  # as a put that overtook the delete leaves it
    seconds, micros = raw_redis.time()
    now_ms = seconds * 1000 + micros // 1000
    kept_ms = registration.DELETIONS_KEPT_SECONDS * 1000
    raw_redis.zadd(
        f"{prefix}:deleted_topics", {topic: now_ms - 3_600_000, "stale": now_ms - kept_ms - 1}
    )
    async with redisched.AsyncClient.from_url(redis_url, prefix=prefix) as service:
        assert await RequeueLoop(service, interval=3600).relist_overtaken() == [topic]
        assert topic in await service.topics()
    assert sorted(deletions(raw_redis, prefix)) == [topic.encode()]


def test_a_client_remembers_a_bounded_number_of_topics(
    redis_url: str, prefix: str, raw_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every topic ever put was remembered for good (the clients' other per-topic caches
    # stop at 10,000): a service putting to ever new topics grew without bound.
    monkeypatch.setattr(registration, "MAX_REMEMBERED", 50)
    with redisched.Client.from_url(redis_url, prefix=prefix) as client:
        for i in range(120):
            client.put(f"many-{i}", "j", b"")
        assert len(client._registered._until) <= 50
        # a forgotten topic is added again by its next put, as after TRUST_SECONDS
        raw_redis.srem(f"{prefix}:topics", "many-0")
        client.put("many-0", "k", b"")
        assert "many-0" in client.topics() and len(client.topics()) == 120
