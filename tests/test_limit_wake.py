"""Every path that takes a job out of the reserved set wakes a consumer that a concurrency
limit holds back (meta limit_waiting), as ack/bury/delete/delete_many/purge do: release.lua (a
job that dies) and requeue.lua (expire/expire_many of a job whose attempts are used up) too,
not only with the cancel ('x' + id), which wakes no consumer (a held Worker waited MAX_IDLE)."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

import redisched
from tests.workerproc import read_until, spawn, wait_for


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.terminate()
    for process in started:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


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
    # wakeup.Wakeups notifies the lessees on any message but an abort ('x' + id)
    assert any(not message.startswith(b"x") for message in heard), heard


@pytest.mark.parametrize("way", WAYS[:2])
def test_a_plain_clients_job_that_dies_frees_a_waiting_worker_at_once(
    redis_url: str, client: redisched.Client, raw_redis: redis.Redis, topic: str,
    workers: list[subprocess.Popen[bytes]], way: str,
) -> None:  # fmt: skip
    """As test_limits_every_consumer's plain-client test, for the paths where the job dies."""
    key = f"plain-{uuid.uuid4().hex[:8]}"
    client.configure(topic, concurrency=1)
    client.put(topic, "first", b"", ttr=60, max_attempts=1)
    held = client.reserve(topic)
    assert held is not None and held.id == "first"
    workers.append(spawn(redis_url, key, "holding", "--topic", topic, "--grace", "0.1"))
    read_until(workers[-1], "worker serving", 20)
    started = f"{key}:started"
    client.put(topic, "second", b"", ttr=60)
    time.sleep(0.5)
    assert raw_redis.llen(started) == 0  # the limit holds the Worker back
    ended = time.monotonic()
    end(client, topic, held, way)
    wait_for(lambda: raw_redis.llen(started) == 1, 15, "the second job to start")
    assert time.monotonic() - ended < 1.0  # without a wake: ~9.5 s (MAX_IDLE)
