"""A deleted topic that is put to again is listed again, by the same process or another."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

import redisched
from redisched import registration
from redisched.http.requeue import RequeueLoop
from redisched.models import JobState

DELETED = "redisched:deleted_topics"


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
    redis_url: str, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registration, "TRUST_SECONDS", 0.3)
    with (
        redisched.Client.from_url(redis_url) as producer,
        redisched.Client.from_url(redis_url) as operator,
    ):
        producer.put(topic, "a", b"")
        operator.delete_topic(topic)
        producer.put(topic, "b", b"")  # trusts its SADD of a moment ago: the set lacks it
        assert topic not in operator.topics()
        time.sleep(0.35)
        producer.put(topic, "c", b"")
        assert topic in operator.topics()


async def test_the_sweep_lists_again_a_topic_whose_put_overtook_the_delete(
    redis_url: str, topic: str, raw_redis: redis.Redis
) -> None:
    """The helper's reproducer: the topic of the overtaking put was listed nowhere, and its
    timed-out reservation was never returned."""
    with (
        redisched.Client.from_url(redis_url) as producer,
        redisched.Client.from_url(redis_url) as operator,
    ):
        producer.put(topic, "a", b"")
        operator.delete_topic(topic, force=True)
        assert raw_redis.sismember(DELETED, topic)
        producer.put(topic, "b", b"", max_attempts=2)
        assert topic not in operator.topics()
        held = operator.reserve(topic, ttr=0.05)
        assert held is not None and held.id == "b"
        time.sleep(0.1)
        async with redisched.AsyncClient.from_url(redis_url) as service:
            sweep = RequeueLoop(service, interval=1.0)
            assert await sweep.sweep() == 1  # listed, then its reservation returned
        assert topic in operator.topics()
        assert not raw_redis.sismember(DELETED, topic)
        job = operator.get(topic, "b")
        assert job is not None and job.state is JobState.READY and job.attempts == 1


async def test_a_deleted_topic_is_watched_only_as_long_as_a_put_could_overtake_its_delete(
    redis_url: str, topic: str, raw_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("redisched.http.requeue.TRUST_SECONDS", 0.1)
    monkeypatch.setattr("redisched.http.requeue.WATCH_MARGIN", 0.1)
    with redisched.Client.from_url(redis_url) as operator:
        operator.put(topic, "a", b"")
        operator.delete_topic(topic)
    async with redisched.AsyncClient.from_url(redis_url) as service:
        sweep = RequeueLoop(service, interval=1.0)
        assert await sweep.relist_overtaken() == []
        assert topic in sweep.watching and raw_redis.sismember(DELETED, topic)
        time.sleep(0.25)
        assert await sweep.relist_overtaken() == []
        assert topic not in sweep.watching and not raw_redis.sismember(DELETED, topic)
        assert topic not in await service.topics()
