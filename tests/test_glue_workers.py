"""The Node.js and Go workers (clients/) on a real redis-server, driven from Python.

Each worker runs the recording handler (clients/node/testing/recording.js and
clients/go/internal/testworker): every run is RPUSHed on ``gluetest:<topic>:runs`` as
"<id> <attempt> <epoch ms>", and a JSON body asks it to sleep or fail.
"""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import redis

import redisched
from tests.glueproc import (
    LANGUAGES,
    NODE_BIN,
    NODE_DIR,
    NODE_HANDLERS,
    require_node,
    running,
    stop,
)  # fmt: skip
from tests.workerproc import wait_for

Command = Callable[..., list[str]]


@pytest.fixture(params=LANGUAGES)
def worker(request: pytest.FixtureRequest) -> Command:
    """A function building the command of a worker serving ``topic`` in one language."""

    def node(topic: str, *, concurrency: int = 8, grace_ms: int = 30_000) -> list[str]:
        return [
            "env", f"GLUE_TOPICS={topic}", "node", str(NODE_BIN), "worker", str(NODE_HANDLERS),
            f"--concurrency={concurrency}", f"--grace-ms={grace_ms}",
        ]  # fmt: skip

    def go(topic: str, *, concurrency: int = 8, grace_ms: int = 30_000) -> list[str]:
        binary = request.getfixturevalue("go_testworker")
        return [str(binary), f"-concurrency={concurrency}", f"-grace-ms={grace_ms}", topic]

    if request.param == "node":
        require_node()
        return node
    return go


def runs(raw: redis.Redis, topic: str) -> list[tuple[str, int, int]]:
    """The recorded runs: (id, attempt, epoch ms)."""
    out = []
    for entry in raw.lrange(f"gluetest:{topic}:runs", 0, -1):
        job_id, attempt, at = entry.decode().rsplit(" ", 2)
        out.append((job_id, int(attempt), int(at)))
    return out


def run_at_ms(client: redisched.Client, topic: str, job_id: str) -> int:
    job = client.get(topic, job_id)
    assert job is not None
    return round(job.run_at.timestamp() * 1000)


def test_due_and_future_jobs_run_once_on_time(
    worker: Command, redis_url: str, topic: str, client: redisched.Client, raw_redis: redis.Redis
) -> None:
    client.put(topic, "now", b"plain")
    client.put(topic, "soon", b"plain", delay=0.4)
    client.put(topic, "later", b"plain", delay=1.2)
    due = {job_id: run_at_ms(client, topic, job_id) for job_id in ("now", "soon", "later")}
    with running(worker(topic), redis_url, cwd=NODE_DIR) as proc:
        ready_at = time.time() * 1000
        # the wake channel, not a poll, finds it; its run_at is given, since a quick worker may
        # have acked it before a read-back
        now = datetime.now(UTC)
        client.put(topic, "after-start", b"plain", run_at=now)
        due["after-start"] = round(now.timestamp() * 1000)
        wait_for(lambda: client.stats(topic).total_acked == 4, 10, "4 acks")
        assert stop(proc) == 0
    seen = runs(raw_redis, topic)
    assert sorted((job_id, attempt) for job_id, attempt, _ in seen) == [
        ("after-start", 1), ("later", 1), ("now", 1), ("soon", 1),
    ]  # fmt: skip
    for job_id, _, at in seen:
        # Never early (server and worker share this machine's clock); late by far less than
        # the 10 s safety poll: the worker slept until next_due_ms or woke on the channel.
        assert at - due[job_id] >= -5, (job_id, at - due[job_id])
        assert at - max(due[job_id], ready_at) < 700, (job_id, at - max(due[job_id], ready_at))
    stats = client.stats(topic)
    assert (stats.scheduled, stats.ready, stats.reserved, stats.dead) == (0, 0, 0, 0)


def test_failures_retry_with_the_topic_backoff_then_go_dead_with_the_error(
    worker: Command, redis_url: str, topic: str, client: redisched.Client, raw_redis: redis.Redis
) -> None:
    raw_redis.hset(
        f"redisched:{{{topic}}}:meta", mapping={"backoff_ms": 200, "backoff_max_ms": 300}
    )
    error = f"boom-{uuid.uuid4().hex[:6]}"
    client.put(topic, "flaky", json.dumps({"fail_until": 1, "error": error}).encode())
    client.put(topic, "broken", json.dumps({"fail_until": 99, "error": error}).encode(),
               max_attempts=3)  # fmt: skip
    with running(worker(topic), redis_url, cwd=NODE_DIR) as proc:
        wait_for(lambda: client.stats(topic).total_dead == 1, 10, "broken to go dead")
        wait_for(lambda: client.stats(topic).total_acked == 1, 10, "flaky to succeed")
        assert stop(proc) == 0
    broken = client.get(topic, "broken")
    assert broken is not None and broken.state == redisched.JobState.DEAD
    assert broken.attempts == 3 and broken.last_error is not None and error in broken.last_error
    seen = runs(raw_redis, topic)
    assert [a for j, a, _ in seen if j == "broken"] == [1, 2, 3]
    assert [a for j, a, _ in seen if j == "flaky"] == [1, 2]
    times = [at for j, _, at in seen if j == "broken"]
    # backoff 200 ms, doubled, at most 300 ms, minus up to 20% jitter
    assert times[1] - times[0] >= 150 and times[2] - times[1] >= 230


def test_sigterm_lets_running_handlers_finish_and_leases_nothing_more(
    worker: Command, redis_url: str, topic: str, client: redisched.Client, raw_redis: redis.Redis
) -> None:
    client.put(topic, "slow", json.dumps({"sleep_ms": 800}).encode())
    with running(worker(topic, concurrency=1), redis_url, cwd=NODE_DIR) as proc:
        wait_for(lambda: len(runs(raw_redis, topic)) == 1, 10, "the handler to start")
        client.put(topic, "queued", b"plain")
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert time.monotonic() - started >= 0.5  # it waited for the handler
    assert client.get(topic, "slow") is None  # acked on the way out
    queued = client.get(topic, "queued")
    assert queued is not None and queued.state == redisched.JobState.READY
    assert queued.attempts == 0  # never leased, or leased and given back unstarted
    assert client.stats(topic).total_acked == 1


def test_handlers_outliving_the_grace_period_are_released_with_the_reason(
    worker: Command, redis_url: str, topic: str, client: redisched.Client, raw_redis: redis.Redis
) -> None:
    client.put(topic, "stuck", json.dumps({"sleep_ms": 60_000}).encode())
    with running(worker(topic, grace_ms=300), redis_url, cwd=NODE_DIR) as proc:
        wait_for(lambda: len(runs(raw_redis, topic)) == 1, 10, "the handler to start")
        assert stop(proc, 10) == 0
    stuck = client.get(topic, "stuck")
    assert stuck is not None and stuck.state == redisched.JobState.READY
    assert stuck.attempts == 0  # the stop cut it short, not the job: its attempt given back
    assert stuck.last_error == "the worker stopped before the handler finished"


@pytest.mark.timeout(60)
def test_kill_9_loses_nothing_the_jobs_run_again_after_their_ttr(
    worker: Command, redis_url: str, topic: str, client: redisched.Client, raw_redis: redis.Redis
) -> None:
    body = json.dumps({"sleep_ms": 60_000, "sleep_until": 1}).encode()
    client.put_many(topic, [(f"j{i}", body) for i in range(4)], ttr=1.0)
    with running(worker(topic), redis_url, cwd=NODE_DIR) as victim:
        wait_for(lambda: len(runs(raw_redis, topic)) == 4, 10, "4 handlers to start")
        victim.kill()
        victim.wait(10)
    killed_at = time.time() * 1000
    with running(worker(topic), redis_url, cwd=NODE_DIR) as survivor:
        wait_for(lambda: client.stats(topic).total_acked == 4, 15, "4 acks")
        assert stop(survivor) == 0
    seen = runs(raw_redis, topic)
    assert sorted((j, a) for j, a, _ in seen) == sorted(
        [(f"j{i}", 1) for i in range(4)] + [(f"j{i}", 2) for i in range(4)]
    )
    # Back after their ttr (1 s from the lease), not before the kill.
    assert all(at >= killed_at - 50 for _, a, at in seen if a == 2)
    stats = client.stats(topic)
    assert (stats.total_requeued, stats.total_acked, stats.reserved, stats.ready) == (4, 4, 0, 0)


def test_an_idle_worker_sends_no_commands(
    worker: Command, redis_url: str, topic: str, client: redisched.Client, raw_redis: redis.Redis
) -> None:
    with running(worker(topic), redis_url, cwd=NODE_DIR) as proc:
        time.sleep(0.3)
        before = raw_redis.info("stats")["total_commands_processed"]
        time.sleep(1.5)
        after = raw_redis.info("stats")["total_commands_processed"]
        assert after - before <= 2  # the two INFO calls; no lease, no poll
        assert stop(proc) == 0
