"""Every path that takes a job out of the reserved set wakes a consumer that a concurrency
limit holds back (meta limit_waiting), on the wake channel: release.lua (a job that dies),
requeue.lua (expire/expire_many of a job whose attempts are used up) and purge.lua, not only
with the cancel ('c' + token + ':' + id), which wakes no consumer. End to end with a real Worker:
tests/test_limits_every_consumer.py."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis

import redisched


def heard_after(raw: redis.Redis, topic: str, action: Callable[[], object]) -> list[bytes]:
    meta, channel = f"redisched:{{{topic}}}:meta", f"redisched:{{{topic}}}:wake"
    raw.hset(meta, "limit_waiting", 1)  # as limit.lua leaves it for a held consumer
    pubsub = raw.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    pubsub.get_message(timeout=1)
    action()
    heard = []
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.2)
        if message is not None:
            heard.append(message["data"])
    pubsub.close()
    return heard


def end(client: redisched.Client, topic: str, held: redisched.Job, way: str) -> None:
    if way == "release_to_dead":
        assert client.release(held, reason="boom") is redisched.JobState.DEAD
    elif way == "expire_to_dead":
        assert client.expire(topic, held.id)
    else:
        assert client.expire_many(topic, [held.id]) == 1


WAYS = ["release_to_dead", "expire_to_dead", "expire_many_to_dead"]


@pytest.mark.parametrize("way", WAYS)
def test_a_running_job_that_dies_wakes_the_held_consumer(
    client: redisched.Client, raw_redis: redis.Redis, topic: str, way: str
) -> None:
    client.configure(topic, concurrency=1)
    client.put(topic, "only", b"", max_attempts=1)
    held = client.reserve(topic)
    assert held is not None and held.id == "only"
    client.put(topic, "next", b"")  # ready, but the concurrency holds it back
    heard = heard_after(raw_redis, topic, lambda: end(client, topic, held, way))
    job = client.get(topic, "only")
    assert job is not None and job.state is redisched.JobState.DEAD
    # wakeup.Wakeups notifies the lessees on any message but a cancel ('c<token>:<id>')
    assert any(not message.startswith(b"c") for message in heard), heard


def test_purging_running_jobs_wakes_a_consumer_the_concurrency_holds_back(
    client: redisched.Client, raw_redis: redis.Redis, topic: str
) -> None:
    """delete_topic(force=True) purges reserved jobs (purge.lua): their places are free."""
    client.configure(topic, concurrency=1)
    client.put(topic, "running", b"")
    job = client.reserve(topic)
    assert job is not None
    heard = heard_after(raw_redis, topic, lambda: client.delete_topic(topic, force=True))
    assert heard == [f"c{job.token}:running".encode(), b"0"]
