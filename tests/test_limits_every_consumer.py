"""A topic's concurrency and rate hold for every consumer together, and cancellation reaches a
running handler fast: real ``redisched worker`` processes on a redis-server of the suite.
"""

from __future__ import annotations

import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace

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


def start(
    workers: list[subprocess.Popen[bytes]], url: str, key: str, handler: str, topic: str, n: int
) -> None:
    for _ in range(n):
        workers.append(spawn(url, key, handler, "--topic", topic, "--concurrency", "50"))
    for process in workers[-n:]:
        read_until(process, "worker serving", 20)


def levels(raw: redis.Redis, key: str) -> list[tuple[int, int]]:
    return [tuple(map(int, line.split())) for line in raw.lrange(f"{key}:levels", 0, -1)]  # type: ignore[misc]


def test_concurrency_holds_across_three_worker_processes(
    redis_url: str, client: redisched.Client, raw_redis: redis.Redis, topic: str,
    workers: list[subprocess.Popen[bytes]],
) -> None:  # fmt: skip
    limit, total, key = 4, 300, f"limits-{uuid.uuid4().hex[:8]}"
    client.configure(topic, concurrency=limit)
    start(workers, redis_url, key, "limited", topic, 3)
    client.put_many(topic, [(f"j{i}", b"") for i in range(total)])
    wait_for(lambda: raw_redis.llen(f"{key}:finished") == total, 60, "every job")
    seen = levels(raw_redis, key)
    assert len(seen) == total
    assert max(level for level, _ in seen) == limit  # never more, and the limit is used
    # a handler records "finished" before its Worker acks it: wait for the last acks
    wait_for(lambda: client.stats(topic).reserved == 0, 10, "every ack")
    assert client.stats(topic).finished_done == total


def test_rate_holds_in_every_ten_second_window(
    redis_url: str, client: redisched.Client, raw_redis: redis.Redis, topic: str,
    workers: list[subprocess.Popen[bytes]],
) -> None:  # fmt: skip
    rate, limit, total, key = 20, 5, 250, f"rate-{uuid.uuid4().hex[:8]}"
    client.configure(topic, rate=rate, concurrency=limit)
    start(workers, redis_url, key, "limited", topic, 3)
    client.put_many(topic, [(f"j{i}", b"") for i in range(total)])
    wait_for(lambda: raw_redis.llen(f"{key}:finished") == total, 60, "every job")
    starts = sorted(ms for _, ms in levels(raw_redis, key))
    assert len(starts) == total
    worst = max(sum(1 for t in starts[i:] if t < first + 10_000) for i, first in enumerate(starts))
    assert worst <= rate * 10 + limit, worst
    span = (starts[-1] - starts[0]) / 1000
    assert span >= (total - rate) / rate * 0.95, span  # the rate held the whole run


def test_cancellation_reaches_the_handler_within_100_ms(
    redis_url: str, client: redisched.Client, raw_redis: redis.Redis, topic: str,
    workers: list[subprocess.Popen[bytes]],
) -> None:  # fmt: skip
    """Delete, abort, replace-while-running and expire each cancel a running async handler
    in another process, through the topic's wake channel; p99 well under 100 ms."""
    key = f"cancel-{uuid.uuid4().hex[:8]}"
    start(workers, redis_url, key, "cancellable", topic, 1)
    ways = {
        "delete": lambda job_id: client.delete(topic, job_id),
        "abort": lambda job_id: client.abort(topic, job_id),
        "replace": lambda job_id: client.put(topic, job_id, b"v2", delay=3600, replace=True),
        "expire": lambda job_id: client.expire(topic, job_id),
    }
    latencies: dict[str, list[float]] = {way: [] for way in ways}
    started = f"{key}:started"
    for round_ in range(50):  # 200 cancellations: the p99 is not just the slowest one
        for way, cancel in ways.items():
            job_id = f"{way}-{round_}"
            client.put(topic, job_id, b"", max_attempts=1)
            wait_for(lambda j=job_id: j.encode() in raw_redis.lrange(started, -1, -1), 10, job_id)
            asked = time.time() * 1000
            cancel(job_id)
            done = sum(len(values) for values in latencies.values()) + 1
            wait_for(lambda n=done: raw_redis.llen(f"{key}:cancelled") == n, 5, job_id)
            name, at = raw_redis.lrange(f"{key}:cancelled", -1, -1)[0].split()
            assert name.decode() == job_id
            latencies[way].append(float(at) - asked)
    every = sorted(v for values in latencies.values() for v in values)
    p99 = every[min(len(every) - 1, round(0.99 * len(every)))]
    print({way: round(statistics.median(v), 2) for way, v in latencies.items()}, "p99", p99)
    assert p99 <= 100, latencies
    replaced = client.get(topic, "replace-0")
    assert replaced is not None and replaced.version == 2  # the new version waits its turn
    assert replaced.state is redisched.JobState.SCHEDULED


@pytest.mark.parametrize("way", ["ack", "bury", "delete", "release", "delete_many", "abort"])
def test_a_job_ended_by_another_process_frees_its_place_at_once(
    redis_url: str, client: redisched.Client, raw_redis: redis.Redis, topic: str,
    workers: list[subprocess.Popen[bytes]], way: str,
) -> None:  # fmt: skip
    """Under concurrency=1, a Worker's running job ended by another client (not the Worker):
    the next job starts at once, not when the lease or its slot times out."""
    key = f"freed-{uuid.uuid4().hex[:8]}"
    client.configure(topic, concurrency=1)
    workers.append(spawn(redis_url, key, "holding", "--topic", topic, "--grace", "0.1"))
    read_until(workers[-1], "worker serving", 20)
    started = f"{key}:started"
    client.put(topic, "first", b"", ttr=60)
    wait_for(lambda: raw_redis.llen(started) == 1, 10, "the first job to start")
    client.put(topic, "second", b"", ttr=60)
    time.sleep(0.3)
    assert raw_redis.llen(started) == 1  # the limit holds the second job back
    job_id, token = raw_redis.lrange(started, 0, 0)[0].decode().split()
    running = SimpleNamespace(topic=topic, id=job_id, token=token)
    ended = time.monotonic()
    if way == "ack":
        client.ack(running)
    elif way == "bury":
        client.bury(running, reason="by hand")
    elif way == "release":
        client.release(running, delay=3600)
    elif way == "delete_many":
        assert client.delete_many(topic, ["first"]) == 1
    elif way == "abort":
        assert client.abort(topic, "first")
    else:
        client.delete(topic, "first")
    wait_for(lambda: raw_redis.llen(started) == 2, 5, "the second job to start")
    assert time.monotonic() - ended < 1.0
    assert raw_redis.lrange(started, 1, 1)[0].startswith(b"second ")


@pytest.mark.parametrize(
    "way", ["ack", "delete", "delete_many", "abort", "release_to_dead", "expire_to_dead"]
)
def test_a_job_leased_by_a_plain_client_frees_a_waiting_worker_at_once(
    redis_url: str, client: redisched.Client, raw_redis: redis.Redis, topic: str,
    workers: list[subprocess.Popen[bytes]], way: str,
) -> None:  # fmt: skip
    """Under concurrency=1, a job reserved by a plain client (no Worker, so no cancel to wake
    anyone) holds the place; ending it by any path wakes the Worker waiting for room (without
    a wake: ~9.5 s, MAX_IDLE)."""
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
    if way == "ack":
        client.ack(held)
    elif way == "delete":
        assert client.delete(topic, "first")
    elif way == "delete_many":
        assert client.delete_many(topic, ["first"]) == 1
    elif way == "abort":
        assert client.abort(topic, "first")
    elif way == "release_to_dead":
        assert client.release(held, reason="boom") is redisched.JobState.DEAD
    else:
        assert client.expire(topic, "first")
    wait_for(lambda: raw_redis.llen(started) == 1, 15, "the second job to start")
    assert time.monotonic() - ended < 1.0
    assert raw_redis.lrange(started, 0, 0)[0].startswith(b"second ")
