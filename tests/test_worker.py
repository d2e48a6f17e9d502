"""The Worker in this process against a real Redis: acks, retries, timing, stop, stale leases."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import random
import signal
import statistics
import threading
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from redisched import (
    AsyncClient,
    BackendError,
    Backoff,
    InvalidArgument,
    Job,
    JobState,
    RedischedError,
    Retry,
    TopicBackoff,
    Worker,
)
from redisched import worker as worker_module
from redisched.embedded import EmbeddedRedis
from redisched.handlers import MAX_ERROR_TEXT, Handler, Watched, describe, is_async
from redisched.worker import CANCEL_WAIT, STOP_CALLS_WAIT, STOPPED_ERROR
from tests.conftest import BINARIES, FakeClock


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient.from_url(redis_url) as c:
        yield c


@contextlib.asynccontextmanager
async def serving(worker: Worker) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``worker`` in the background; stop it (gracefully) on the way out."""
    task = asyncio.create_task(worker.run())
    started = asyncio.create_task(worker.wait_started())
    await asyncio.wait({task, started}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        started.cancel()
        task.result()
    assert started.done(), "the worker did not start"
    try:
        yield task
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)


def new_worker(client: AsyncClient, handlers: dict[str, Any], **options: Any) -> Worker:
    return Worker(client, handlers, handle_signals=False, **options)


async def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


def evalsha_calls(raw_redis: redis.Redis) -> int:
    return int(raw_redis.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


async def scripts_to_drain(
    client: AsyncClient,
    raw_redis: redis.Redis,
    topic: str,
    handler: Handler,
    jobs: int,
    concurrency: int,
) -> int:
    """How many scripts a worker runs to drain ``jobs`` jobs put at once."""
    await client.put_many(topic, [(str(i), b"x" * 100) for i in range(jobs)])
    before = evalsha_calls(raw_redis)
    async with serving(new_worker(client, {topic: handler}, concurrency=concurrency)):

        async def drained() -> bool:
            return (await client.stats(topic)).total_acked == jobs

        await wait_until(drained)
    return evalsha_calls(raw_redis) - before


async def test_async_and_sync_handlers_ack_every_job_once(client: AsyncClient, topic: str) -> None:
    seen: dict[str, list[str]] = {"async": [], "sync": []}
    loop_thread = threading.get_ident()
    threads = set()

    async def on_async(job: Job) -> None:
        seen["async"].append(job.id)

    def on_sync(job: Job) -> None:
        threads.add(threading.get_ident())
        seen["sync"].append(job.id)

    await client.put_many(f"{topic}-a", [(f"a{i}", b"x") for i in range(60)])
    await client.put_many(f"{topic}-s", [(f"s{i}", b"x") for i in range(60)])
    worker = new_worker(client, {f"{topic}-a": on_async, f"{topic}-s": on_sync}, concurrency=8)
    async with serving(worker):

        async def all_acked() -> bool:
            a, s = await client.stats(f"{topic}-a"), await client.stats(f"{topic}-s")
            return a.total_acked == 60 and s.total_acked == 60

        await wait_until(all_acked)
    assert sorted(seen["async"]) == sorted(f"a{i}" for i in range(60))
    assert sorted(seen["sync"]) == sorted(f"s{i}" for i in range(60))
    assert threads and loop_thread not in threads  # sync handlers ran in the pool
    for name in (f"{topic}-a", f"{topic}-s"):
        stats = await client.stats(name)
        assert (stats.ready, stats.reserved, stats.total_released) == (0, 0, 0)


async def test_concurrency_is_shared_by_all_topics(client: AsyncClient, topic: str) -> None:
    running, peak = 0, 0

    async def handler(job: Job) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1

    for name in (f"{topic}-1", f"{topic}-2"):
        await client.put_many(name, [(str(i), b"") for i in range(30)])
    worker = new_worker(client, {f"{topic}-1": handler, f"{topic}-2": handler}, concurrency=3)
    async with serving(worker):

        async def drained() -> bool:
            one, two = await client.stats(f"{topic}-1"), await client.stats(f"{topic}-2")
            return one.total_acked + two.total_acked == 60

        await wait_until(drained)
    assert peak == 3


async def test_batches_need_far_fewer_commands_than_reserve_plus_ack(
    client: AsyncClient, topic: str, raw_redis: redis.Redis
) -> None:
    async def handler(job: Job) -> None:
        pass

    # reserve + ack per job would be 2000 scripts; ack+lease of up to 200 jobs is 2 per batch
    assert await scripts_to_drain(client, raw_redis, topic, handler, 1000, 200) < 200


async def test_failures_back_off_exponentially_then_the_job_dies(
    client: AsyncClient, topic: str
) -> None:
    failed_at: list[float] = []
    started_at: list[float] = []

    async def handler(job: Job) -> None:
        started_at.append(time.monotonic())
        failed_at.append(time.monotonic())
        raise ValueError(f"boom {job.attempts}")

    await client.put(topic, "j", b"", max_attempts=3)
    backoff = Backoff(base=0.2, max=10, jitter=0)
    async with serving(new_worker(client, {topic: handler}, backoff=backoff)):

        async def dead() -> bool:
            job = await client.get(topic, "j")
            return job is not None and job.state is JobState.DEAD

        await wait_until(dead)
    job = await client.get(topic, "j")
    assert job is not None and job.attempts == 3
    assert job.last_error is not None and "ValueError: boom 3" in job.last_error
    assert "Traceback" in job.last_error
    assert len(started_at) == 3
    gaps = [started_at[i + 1] - failed_at[i] for i in range(2)]
    for gap, expected in zip(gaps, (0.2, 0.4), strict=True):
        assert expected - 0.002 <= gap <= expected + 0.25, gaps


def test_a_huge_error_keeps_the_exceptions_type_and_its_end() -> None:
    """The end alone of a 200,000-character message was kept: last_error began "...eeee",
    and nobody could tell what was raised."""
    try:
        raise RuntimeError("boom " + "e" * 200_000 + " the end")
    except RuntimeError as exc:
        text = describe(exc)
    assert len(text) <= MAX_ERROR_TEXT + 5
    assert text.startswith("RuntimeError: boom eee") and text.endswith("eee the end")
    try:
        raise ValueError("short")
    except ValueError as exc:
        assert describe(exc).startswith("Traceback") and describe(exc).endswith("ValueError: short")


class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no")


def _nested(depth: int) -> dict[str, object]:
    value: dict[str, object] = {}
    for _ in range(depth):
        value = {"child": value}
    return value


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ({1, 2}, b'"{1, 2}"'),
        (float("nan"), b'"nan"'),
        ({"a": 1}, b'{"a":1}'),
        # these stopped the whole Worker: a RecursionError from the encoder, then a repr that
        # raises (an int past Python's 4,300 digits, a __repr__ of its own, a nest too deep)
        (_nested(5000), b'"<dict whose repr failed: RecursionError>"'),
        (10**5000, b'"<int whose repr failed: ValueError>"'),
        (_BadRepr(), b'"<_BadRepr whose repr failed: RuntimeError>"'),
    ],
    ids=["set", "nan", "json", "deep", "huge-int", "bad-repr"],
)
async def test_a_result_json_cannot_hold_is_kept_as_the_json_string_of_its_repr(
    client: AsyncClient, topic: str, value: object, stored: bytes
) -> None:
    """A handler returning a set or NaN stored ``{1, 2}`` / ``nan``, no JSON, though results
    are JSON (and ``ack(result=...)`` refuses them). The Worker goes on with the next job."""
    await client.put(topic, "j", b"x")
    await client.put(topic, "k", b"x", delay=0.2)
    async with serving(new_worker(client, {topic: lambda job: value}, concurrency=1)):

        async def acked() -> bool:
            return (await client.stats(topic)).total_acked == 2

        await wait_until(acked)
    history = await client.history(topic, "j")
    assert history is not None and history.result == stored


def test_backoff_delays() -> None:
    backoff = Backoff(base=1, max=30, jitter=0.5)
    assert [backoff.ceiling(n) for n in (1, 2, 3, 5, 6, 100)] == [1, 2, 4, 16, 30, 30]
    delays = [backoff.delay(3) for _ in range(200)]
    assert all(2 <= d <= 4 for d in delays) and max(delays) - min(delays) > 1  # jittered


@pytest.mark.parametrize(
    ("policy", "settings", "expected"),
    [
        (TopicBackoff(), (None, None), (1.0, 3600.0)),
        (TopicBackoff(), (5, 2), (5, 5)),  # the topic's longest is raised to its first
        (TopicBackoff(max=0.3), (0.1, None), (0.1, 0.3)),  # the topic's first, the longest given
        (TopicBackoff(max=0.3), (None, 60), (0.3, 0.3)),  # a longest alone caps the first too
        (TopicBackoff(base=2), (None, 60), (2, 60)),
        (TopicBackoff(base=120), (None, 60), (120, 120)),
        (TopicBackoff(base=timedelta(seconds=2), max=3, jitter=0), (9, 9), (2, 3)),
    ],
)
def test_a_topic_backoff_fills_in_the_topics_settings(
    policy: TopicBackoff,
    settings: tuple[float | None, float | None],
    expected: tuple[float, float],
) -> None:
    made = policy.for_topic(*settings)
    assert (made.base, made.max, made.jitter) == (*expected, policy.jitter)


async def test_a_worker_takes_the_topics_first_delay_and_its_own_longest(
    client: AsyncClient, topic: str
) -> None:
    """The public way to leave one part to the topic (the CLI's --backoff-max alone)."""
    starts: list[float] = []

    async def handler(job: Job) -> None:
        starts.append(time.monotonic())
        raise ValueError("boom")

    await client.configure(topic, backoff=0.1, backoff_max=60)
    await client.put(topic, "j", b"", max_attempts=5)
    policy = TopicBackoff(max=0.3, jitter=0)
    async with serving(new_worker(client, {topic: handler}, backoff=policy)):

        async def dead() -> bool:
            job = await client.get(topic, "j")
            return job is not None and job.state is JobState.DEAD

        await wait_until(dead)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # expected 0.1, 0.2, 0.3, 0.3; the topic's alone: 0.1, 0.2, 0.4, 0.8; 0.3 as the first.
    # A run may start a few ms early by the local clock: the Worker leaves ahead by its lead
    # over the server's millisecond clock (seen: 0.29994 for 0.3).
    assert 0.09 <= gaps[0] < 0.25 and 0.28 <= gaps[3] < 0.6, gaps


async def test_a_backoff_of_timedeltas_delays_a_failed_job(client: AsyncClient, topic: str) -> None:
    # Backoff took timedeltas (its checks do) but kept them: the first failure's delay
    # raised TypeError ('<' not supported between 'datetime.timedelta' and 'float') and the
    # worker stopped.
    backoff = Backoff(base=timedelta(seconds=30), max=timedelta(minutes=5), jitter=0)
    assert (backoff.base, backoff.max, backoff.ceiling(2)) == (30.0, 300.0, 60.0)

    async def handler(job: Job) -> None:
        raise RuntimeError("fails")

    await client.put(topic, "j", b"")
    started = time.time()
    async with serving(new_worker(client, {topic: handler}, backoff=backoff)) as task:

        async def released() -> bool:
            return (await client.stats(topic)).scheduled == 1

        await wait_until(released)
        assert not task.done()
    job = await client.get(topic, "j")
    assert job is not None and job.state is JobState.SCHEDULED
    assert 29 <= job.run_at.timestamp() - started <= 40


async def test_a_backoff_given_as_timedeltas_retries_in_seconds(
    client: AsyncClient, topic: str
) -> None:
    """A timedelta base and max are accepted, so they must work: delay() raised a TypeError
    on the first failure, which stopped the Worker with the job left reserved."""
    backoff = Backoff(base=timedelta(milliseconds=200), max=timedelta(seconds=1), jitter=0)
    assert (backoff.base, backoff.max) == (0.2, 1.0)
    assert [backoff.delay(n) for n in (1, 2, 4)] == [0.2, 0.4, 1.0]

    async def handler(job: Job) -> None:
        raise ValueError("boom")

    await client.put(topic, "j", b"", max_attempts=2)
    async with serving(new_worker(client, {topic: handler}, backoff=backoff)) as task:

        async def dead() -> bool:
            job = await client.get(topic, "j")
            return job is not None and job.state is JobState.DEAD

        await wait_until(dead)
        assert not task.done()  # still serving


async def test_retry_asks_for_a_specific_delay(client: AsyncClient, topic: str) -> None:
    starts: list[float] = []

    async def handler(job: Job) -> None:
        starts.append(time.monotonic())
        if job.attempts == 1:
            raise Retry(delay=0.3, reason="not yet")

    await client.put(topic, "j", b"")
    slow_backoff = Backoff(base=100, max=100)  # a Retry must not fall back to it
    async with serving(new_worker(client, {topic: handler}, backoff=slow_backoff)):

        async def acked() -> bool:
            return (await client.stats(topic)).total_acked == 1

        await wait_until(acked)
    assert len(starts) == 2
    assert 0.3 <= starts[1] - starts[0] <= 0.3 + 0.25
    assert await client.get(topic, "j") is None


async def test_an_error_text_with_a_lone_surrogate_fails_only_its_job(
    client: AsyncClient, topic: str
) -> None:
    """A handler's error naming a file decoded with surrogateescape: releasing its job raised
    UnicodeEncodeError, which stopped the Worker with the job left reserved."""
    name = b"caf\xe9.txt".decode("utf-8", "surrogateescape")

    async def handler(job: Job) -> None:
        if job.id == "file":
            raise FileNotFoundError(f"no such file: {name}")
        raise Retry(reason=f"later: {name}")  # refused: InvalidArgument fails the attempt

    await client.put_many(topic, [("file", b""), ("retry", b"")], max_attempts=1)
    async with serving(new_worker(client, {topic: handler})) as task:

        async def both_dead() -> bool:
            jobs = [await client.get(topic, i) for i in ("file", "retry")]
            return all(j is not None and j.state is JobState.DEAD for j in jobs)

        await wait_until(both_dead)
        assert not task.done()  # still serving
    file = await client.get(topic, "file")
    assert file is not None and file.last_error is not None
    assert file.last_error.endswith("FileNotFoundError: no such file: caf\\udce9.txt")
    retry = await client.get(topic, "retry")
    assert retry is not None and retry.last_error is not None
    assert "(no lone surrogates): one at character 10" in retry.last_error


async def test_release_refuses_a_reason_utf8_cannot_carry(client: AsyncClient, topic: str) -> None:
    await client.put(topic, "j", b"")
    job = await client.reserve(topic)
    assert job is not None
    with pytest.raises(InvalidArgument) as caught:
        await client.release(job, reason="bad \udcff")
    assert caught.value.argument == "reason"
    with pytest.raises(InvalidArgument) as caught:
        await client.bury(job, reason="bad \udcff")
    assert caught.value.argument == "reason"
    stored = await client.get(topic, "j")
    assert stored is not None and stored.state is JobState.RESERVED  # unchanged


async def test_a_result_that_is_not_json_is_never_stored_as_if_it_were(
    client: AsyncClient, topic: str
) -> None:
    """A NaN or an infinity was stored as NaN / Infinity: not JSON, which the README promises
    for results that are neither bytes nor str."""
    await client.put(topic, "acked", b"")
    job = await client.reserve(topic)
    assert job is not None
    with pytest.raises(InvalidArgument) as caught:
        await client.ack(job, result={"ratio": float("nan")})
    assert caught.value.argument == "result"
    assert (await client.get(topic, "acked")) is not None  # still reserved
    await client.ack(job)

    async def handler(job: Job) -> object:
        return [float("inf")]

    await client.put(topic, "worked", b"")
    async with serving(new_worker(client, {topic: handler})):

        async def finished() -> bool:
            history = await client.history(topic, "worked")
            return history is not None and history.outcome is not None

        await wait_until(finished)
    history = await client.history(topic, "worked")
    assert history is not None and history.result == b'"[inf]"'  # its repr as JSON, logged


async def test_an_empty_retry_reason_after_the_lease_was_lost_fails_only_its_job(
    client: AsyncClient, topic: str
) -> None:
    """Logging the failure of a lost attempt took the reason's last line: Retry(reason="")
    raised IndexError there, which stopped the Worker."""

    def handler(job: Job) -> None:
        time.sleep(0.6)  # expired meanwhile; the next heartbeat finds the lease lost
        raise Retry(reason="")

    async with serving(new_worker(client, {topic: handler}, ttr=0.2)) as task:
        await client.put(topic, "j", b"")
        await asyncio.sleep(0.05)
        assert await client.expire(topic, "j")
        await asyncio.sleep(1.0)
        assert not task.done()


async def test_sync_handler_error_is_kept_as_last_error(client: AsyncClient, topic: str) -> None:
    def handler(job: Job) -> None:
        raise KeyError("missing-key")

    await client.put(topic, "j", b"", max_attempts=1)
    async with serving(new_worker(client, {topic: handler})):

        async def dead() -> bool:
            return (await client.stats(topic)).dead == 1

        await wait_until(dead)
    job = await client.get(topic, "j")
    assert job is not None and job.state is JobState.DEAD
    assert job.last_error is not None and "KeyError: 'missing-key'" in job.last_error


async def test_an_error_text_with_a_lone_surrogate_is_kept_escaped(
    client: AsyncClient, topic: str
) -> None:
    # An undecodable file name (os.fsdecode: surrogateescape) in an exception's message made
    # the release refuse its reason, and the worker stopped ("worker task failed"), the job
    # left reserved until its ttr ran out.
    async def handler(job: Job) -> None:
        raise ValueError("cannot read " + b"/data/caf\xe9.csv".decode("utf-8", "surrogateescape"))

    await client.put(topic, "j", b"", max_attempts=2)
    async with serving(new_worker(client, {topic: handler})) as task:

        async def dead() -> bool:
            return (await client.stats(topic)).dead == 1

        await wait_until(dead)
        assert not task.done()
    job = await client.get(topic, "j")
    assert job is not None and job.state is JobState.DEAD and job.attempts == 2
    assert job.last_error is not None and "cannot read /data/caf\\udce9.csv" in job.last_error


async def test_pause_is_honoured_and_resume_wakes_the_worker(
    client: AsyncClient, topic: str
) -> None:
    ran: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    async def handler(job: Job) -> None:
        ran.set_result(time.monotonic())

    await client.pause(topic)
    await client.put(topic, "due", b"")
    await client.put(topic, "due-later", b"", delay=0.1)
    async with serving(new_worker(client, {topic: handler}, concurrency=1)):
        await asyncio.sleep(0.4)
        assert not ran.done()
        stats = await client.stats(topic)
        assert stats.reserved == 0 and stats.total_reserved == 0
        resumed = time.monotonic()
        await client.resume(topic)
        started = await asyncio.wait_for(ran, 5)
    assert started - resumed < 0.1


async def test_a_put_due_now_wakes_a_waiting_worker_within_milliseconds(
    client: AsyncClient, topic: str
) -> None:
    started: asyncio.Queue[float] = asyncio.Queue()

    async def handler(job: Job) -> None:
        started.put_nowait(time.perf_counter())

    lags = []
    async with serving(new_worker(client, {topic: handler})):
        await asyncio.sleep(0.05)  # idle: nothing to lease
        for i in range(30):
            put_at = time.perf_counter()
            await client.put(topic, str(i), b"")
            lags.append(await asyncio.wait_for(started.get(), 5) - put_at)
            await asyncio.sleep(0.01)
    assert statistics.median(lags) < 0.01, lags  # a few ms, not a 100 ms poll


async def test_a_future_job_starts_within_milliseconds_of_its_run_at(
    client: AsyncClient, topic: str
) -> None:
    lags: list[float] = []

    async def handler(job: Job) -> None:
        lags.append(time.time() - job.run_at.timestamp())

    async with serving(new_worker(client, {topic: handler})):
        now = time.time()
        for i in range(15):
            await client.put(topic, str(i), b"", run_at=now + 0.2 + i * 0.037)

        async def all_ran() -> bool:
            return len(lags) == 15

        await wait_until(all_ran)
    assert min(lags) >= 0, "never before run_at"
    assert statistics.median(lags) < 0.005, lags


async def test_stop_lets_running_handlers_finish_and_acks_them(
    client: AsyncClient, topic: str
) -> None:
    started, finished = [], []

    async def handler(job: Job) -> None:
        started.append(job.id)
        await asyncio.sleep(0.3)
        finished.append(job.id)

    await client.put_many(topic, [(str(i), b"") for i in range(5)])
    later = time.monotonic() + 2.0  # due only after the stop, even on a loaded machine
    await client.put(topic, "later", b"", delay=2.0)
    worker = new_worker(client, {topic: handler}, grace=10)
    task = asyncio.create_task(worker.run())

    async def all_started() -> bool:
        return len(started) == 5

    await wait_until(all_started)
    stopped_at = time.monotonic()
    worker.stop()
    await asyncio.wait_for(task, 5)
    assert time.monotonic() - stopped_at < 1.0
    assert sorted(finished) == sorted(started)
    stats = await client.stats(topic)
    assert time.monotonic() < later, "the machine was too slow for this test's timing"
    assert (stats.total_acked, stats.reserved, stats.scheduled) == (5, 0, 1)
    await asyncio.sleep(max(0.0, later - time.monotonic()) + 0.1)
    job = await client.get(topic, "later")  # due now, and not leased after the stop
    assert job is not None and job.attempts == 0


async def test_jobs_that_finish_during_the_grace_period_are_acked_at_once(
    client: AsyncClient, topic: str
) -> None:
    """Acks waited for the last handler: a job that finished early in the grace period lost its
    reservation meanwhile (ttr 1 s, no heartbeat once finished) and a second worker ran it
    again."""
    runs: list[str] = []

    async def handler(job: Job) -> None:
        runs.append(job.id)
        await asyncio.sleep(3 if job.id == "long" else 0.3)

    await client.put_many(topic, [("long", b""), ("short", b"")], ttr=1)
    first = new_worker(client, {topic: handler}, grace=10)
    task = asyncio.create_task(first.run())
    await wait_until(lambda: _done(len(runs) == 2))
    first.stop()
    async with serving(new_worker(client, {topic: handler})):
        await asyncio.wait_for(task, 10)  # "long" ends after 3 s, "short" long before
        await asyncio.sleep(0.3)
    assert sorted(runs) == ["long", "short"]
    stats = await client.stats(topic)
    assert (stats.total_acked, stats.total_requeued) == (2, 0)


async def test_stop_releases_what_does_not_finish_within_grace(
    client: AsyncClient, topic: str
) -> None:
    cancelled = asyncio.Event()
    started = asyncio.Event()

    async def handler(job: Job) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    await client.put(topic, "j", b"", max_attempts=1)
    worker = new_worker(client, {topic: handler}, grace=0.2)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 5)
    worker.stop()
    await asyncio.wait_for(task, 5)
    assert cancelled.is_set()
    job = await client.get(topic, "j")
    assert job is not None and job.state is JobState.READY and job.last_error == STOPPED_ERROR
    # the stop cut it short, not the job: its one attempt is given back (it went dead on a
    # SIGTERM), and its history says why
    assert job.attempts == 0
    history = await client.history(topic, "j")
    assert history is not None and history.events[-1].detail == STOPPED_ERROR


async def test_a_stop_while_redis_does_not_answer_overruns_its_grace_by_a_bounded_wait(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # the releases of unfinished jobs and the last acks each waited out the socket's timeout
    # (5 s): a grace of 0.2 s took 5.2 s, past what a supervisor gives before SIGKILL
    started = asyncio.Event()

    async def handler(job: Job) -> None:
        started.set()
        await asyncio.sleep(60)

    server = EmbeddedRedis(tmp_path, binary=BINARIES["redis7"], persistent=False).start()
    assert server.process is not None
    try:
        async with AsyncClient.from_url(server.url) as client:
            await client.put("frozen", "j", b"")
            worker = new_worker(client, {"frozen": handler}, grace=0.2)
            task = asyncio.create_task(worker.run())
            await asyncio.wait_for(started.wait(), 5)
            os.kill(server.process.pid, signal.SIGSTOP)
            try:
                began = time.monotonic()
                worker.stop()
                await asyncio.wait_for(task, 10)
                took = time.monotonic() - began
            finally:
                os.kill(server.process.pid, signal.SIGCONT)
        assert 0.2 + STOP_CALLS_WAIT - 0.1 < took < 0.2 + STOP_CALLS_WAIT + 1.5
        assert "Redis did not answer within 2 s" in caplog.text
    finally:
        server.stop()


async def test_a_stops_last_calls_all_go_through_while_they_make_progress() -> None:
    # a bound on all of them cut thousands of releases on a slow Redis short (their attempts
    # counted again); and waiting on every pending call again at each end cost O(n^2)
    from redisched.worker import _bounded

    gate = asyncio.Semaphore(16)  # as the Worker's side calls
    ended = 0

    async def release() -> None:
        nonlocal ended
        async with gate:
            await asyncio.sleep(0.004)
        ended += 1

    began = time.monotonic()
    await _bounded(release() for _ in range(10_000))  # ~2.5 s of calls: past 2 s in all
    assert ended == 10_000 and time.monotonic() - began < 10


async def test_stop_returns_even_if_handlers_ignore_their_cancellation(
    client: AsyncClient, topic: str
) -> None:
    """run() waited forever for an async handler that swallows CancelledError; a thread that
    does not return kept the interpreter from exiting, unannounced."""
    sync_topic = f"{topic}-sync"
    ignoring = asyncio.Event()
    let_go = threading.Event()
    started: list[str] = []

    async def stubborn(job: Job) -> None:
        started.append(job.id)
        while not let_go.is_set():
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                ignoring.set()

    def stuck(job: Job) -> None:
        started.append(job.id)
        let_go.wait(30)

    await client.put(topic, "async", b"")
    await client.put(sync_topic, "sync", b"")
    worker = new_worker(client, {topic: stubborn, sync_topic: stuck}, grace=0.1)
    task = asyncio.create_task(worker.run())
    await wait_until(lambda: _done(len(started) == 2))
    stopped = time.monotonic()
    worker.stop()
    try:
        await asyncio.wait_for(task, 10)
        assert time.monotonic() - stopped < 0.1 + CANCEL_WAIT + 0.5
        assert ignoring.is_set() and worker.abandoned == 2
        for t, i in ((topic, "async"), (sync_topic, "sync")):
            job = await client.get(t, i)
            assert job is not None and job.state is JobState.READY, job
            assert job.last_error == STOPPED_ERROR
    finally:
        let_go.set()
    await asyncio.sleep(0.1)  # the stubborn handler returns: its job is not acked
    assert (await client.stats(topic)).total_acked == 0


async def test_a_sync_handler_is_told_to_stop_at_the_end_of_the_grace_period(
    client: AsyncClient, topic: str
) -> None:
    """A sync handler never saw ``job.cancelled`` at a stop: its runner was cancelled, its job
    released, and the thread ran on beside the next attempt of the job elsewhere. Now the flag
    turns True, the stop waits for the handler to return, and its job is released (not acked,
    though it returned): it may have cut its work short."""
    seen: list[str] = []
    started, ended = threading.Event(), threading.Event()

    def handler(job: Job) -> None:
        started.set()
        for _ in range(500):  # 5 s, checking between steps as the README says
            if job.cancelled:
                assert job.cancellation is not None
                seen.append(job.cancellation.reason)
                break
            time.sleep(0.01)
        ended.set()

    await client.put(topic, "j", b"", max_attempts=5)
    worker = new_worker(client, {topic: handler}, grace=0.2)
    task = asyncio.create_task(worker.run())
    await wait_until(lambda: _done(started.is_set()))
    worker.stop()
    await asyncio.wait_for(task, 5)
    assert ended.is_set() and seen == [STOPPED_ERROR]  # it had ended when run() returned
    assert worker.abandoned == 0
    job = await client.get(topic, "j")
    assert job is not None and job.state is JobState.READY and job.last_error == STOPPED_ERROR
    assert job.attempts == 0  # a stop spends no attempt
    assert (await client.stats(topic)).total_acked == 0


async def test_a_second_run_at_the_same_time_is_refused(client: AsyncClient, topic: str) -> None:
    """run() checked that the worker was not running, then awaited its topics' partitions
    before marking it running: a second run() in that window ran too, and overwrote the
    first's state (its handlers were reported left behind at the stop)."""
    worker = new_worker(client, {topic: lambda job: None})
    first = asyncio.create_task(worker.run())
    await asyncio.sleep(0)  # the first run() is now at its first await
    with pytest.raises(RedischedError, match="already running"):
        await worker.run()
    await worker.wait_started()
    worker.stop()
    await asyncio.wait_for(first, 5)
    assert worker.abandoned == 0


async def test_a_job_still_waiting_for_a_thread_at_stop_goes_back_unstarted(
    client: AsyncClient, topic: str
) -> None:
    """Sync handlers run on 256 threads at most: the jobs leased beyond that wait for one, and
    a stop released them as started, using up an attempt of jobs that never ran."""
    started: set[str] = set()
    let_go = threading.Event()

    def handler(job: Job) -> None:
        started.add(job.id)
        let_go.wait(10)

    await client.put_many(topic, [(f"j{i}", b"") for i in range(260)])
    worker = new_worker(client, {topic: handler}, concurrency=260, grace=0.1)
    task = asyncio.create_task(worker.run())
    try:
        await wait_until(lambda: _done(len(started) == 256))
        await asyncio.sleep(0.1)
        worker.stop()
        await asyncio.wait_for(task, 10)
    finally:
        let_go.set()
    waited = [f"j{i}" for i in range(260) if f"j{i}" not in started]
    assert len(waited) == 4
    for job_id in waited:
        job = await client.get(topic, job_id)
        assert job is not None and job.state is JobState.READY and job.attempts == 0


async def test_a_second_stop_skips_the_grace_period(client: AsyncClient, topic: str) -> None:
    started = asyncio.Event()

    def handler(job: Job) -> None:  # a sync handler cannot be cancelled; it is left behind
        started_in_loop.call_soon_threadsafe(started.set)
        time.sleep(1.0)

    started_in_loop = asyncio.get_running_loop()
    await client.put(topic, "j", b"")
    worker = new_worker(client, {topic: handler}, grace=30)
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 5)
    begun = time.monotonic()
    worker.stop()
    await asyncio.sleep(0.05)
    worker.stop()
    await asyncio.wait_for(task, 5)
    assert time.monotonic() - begun < 0.9
    assert (await client.stats(topic)).ready == 1


async def test_a_handler_can_stop_the_worker_from_a_thread(client: AsyncClient, topic: str) -> None:
    worker: Worker

    def handler(job: Job) -> None:
        worker.stop()

    await client.put(topic, "j", b"")
    worker = new_worker(client, {topic: handler})
    await asyncio.wait_for(worker.run(), 10)
    assert (await client.stats(topic)).total_acked == 1


async def test_long_handlers_keep_their_reservation(client: AsyncClient, topic: str) -> None:
    deadlines = []

    async def handler(job: Job) -> None:
        for _ in range(4):
            await asyncio.sleep(0.25)
            stored = await client.get(topic, job.id)
            assert stored is not None
            deadlines.append(stored.reserved_until)

    await client.put(topic, "long", b"")
    async with serving(new_worker(client, {topic: handler}, ttr=0.3)):

        async def acked() -> bool:
            return (await client.stats(topic)).total_acked == 1

        await wait_until(acked)
    stats = await client.stats(topic)
    assert (stats.total_reserved, stats.total_requeued) == (1, 0)
    assert len(set(deadlines)) >= 3  # extended again and again


async def test_a_late_ack_after_the_lease_was_lost_is_rejected(
    client: AsyncClient, topic: str, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    release = asyncio.Event()
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def handler(job: Job) -> None:
        started.set()
        try:
            await release.wait()
        except asyncio.CancelledError:  # the requeue tells the holder: it stops at once
            cancelled.set()
            raise

    await client.put(topic, "j", b"", ttr=60)
    # A second worker whose clock is a day ahead sees the first one's lease as expired.
    other = AsyncClient.from_url(redis_url, clock=FakeClock(time.time() + 86_400))
    async with other, serving(new_worker(client, {topic: handler}, concurrency=1)):
        await asyncio.wait_for(started.wait(), 5)
        assert await other.requeue(topic) == 1
        second = await other.reserve(topic)
        assert second is not None and second.attempts == 2
        with caplog.at_level(logging.WARNING, logger="redisched"):
            release.set()  # had it not been cancelled, its late ack would be rejected

            async def rejected() -> bool:
                return cancelled.is_set() or "ack rejected" in caplog.text

            await wait_until(rejected)
        assert (await client.get(topic, "j")) is not None  # the late ack changed nothing
        await other.ack(second)
    stats = await client.stats(topic)
    assert stats.total_acked == 1 and await client.get(topic, "j") is None


async def test_expired_lease_is_requeued_at_its_deadline_without_polling(
    client: AsyncClient, topic: str, raw_redis: redis.Redis
) -> None:
    ran: asyncio.Future[tuple[float, int]] = asyncio.get_running_loop().create_future()

    async def handler(job: Job) -> None:
        # counted as the job starts: the ack and lease after it are sent at once (the worker
        # does not wait for the test to read the count)
        ran.set_result((time.time(), evalsha_calls(raw_redis)))

    await client.put(topic, "j", b"", ttr=0.5)
    crashed = await client.reserve(topic)  # held by a worker that died
    assert crashed is not None and crashed.reserved_until is not None
    async with serving(new_worker(client, {topic: handler})):
        calls = evalsha_calls(raw_redis)
        started, calls_at_start = await asyncio.wait_for(ran, 5)
        scripts_while_waiting = calls_at_start - calls
    lag = started - crashed.reserved_until.timestamp()
    assert 0 <= lag < 0.05, lag
    # no polling while waiting: one requeue and the lease that took the job; at most the
    # worker's first lease (nothing ready; it may still be on its way when counting starts)
    # and the one sent as the job started (the worker leases again after a full lease)
    assert scripts_while_waiting <= 4


async def test_an_idle_worker_costs_almost_no_commands(
    client: AsyncClient, topic: str, raw_redis: redis.Redis
) -> None:
    async def handler(job: Job) -> None:
        pass

    await client.put(topic, "future", b"", delay=3600)
    async with serving(new_worker(client, {topic: handler}, concurrency=50)):
        await asyncio.sleep(0.1)
        before = raw_redis.info("stats")["total_commands_processed"]
        await asyncio.sleep(1.5)
        during = raw_redis.info("stats")["total_commands_processed"] - before - 1
    assert during <= 3, during


async def test_stop_before_run_returns_at_once(client: AsyncClient, topic: str) -> None:
    async def handler(job: Job) -> None:
        raise AssertionError("nothing should run")

    await client.put(topic, "j", b"")
    worker = new_worker(client, {topic: handler})
    worker.stop()
    await asyncio.wait_for(worker.run(), 5)
    assert (await client.stats(topic)).ready == 1


def _generator_handler(job: Job) -> Any:
    """A handler written as a generator by mistake: calling it runs nothing (it was acked)."""
    yield job.id


async def _async_generator_handler(job: Job) -> Any:
    yield job.id


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"handlers": {}}, "handlers"),
        ({"handlers": {"t": "not callable"}}, "handlers['t']"),
        ({"handlers": {"a{b": print}}, "handlers['a{b']"),
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": 1.5}, "concurrency"),
        ({"ttr": 0}, "ttr"),
        ({"grace": -1}, "grace"),
        ({"backoff": 3}, "backoff"),
        ({"wakeups": "hub"}, "wakeups"),
        ({"handlers": {"t": _generator_handler}}, "handlers['t']"),
        ({"handlers": {"t": _async_generator_handler}}, "handlers['t']"),
        ({"client": None}, "client"),
        ({"handle_signals": "no"}, "handle_signals"),  # was taken as True
        ({"handle_signals": None}, "handle_signals"),
    ],
)
async def test_bad_arguments_name_the_field(
    client: AsyncClient, options: dict[str, Any], argument: str
) -> None:
    kwargs: dict[str, Any] = {"client": client, "handlers": {"t": print}, **options}
    with pytest.raises(InvalidArgument) as caught:
        Worker(kwargs.pop("client"), kwargs.pop("handlers"), **kwargs)
    assert caught.value.argument == argument


@pytest.mark.parametrize(
    ("make", "argument"),
    [
        (lambda: Backoff(base=-1), "backoff.base"),
        (lambda: Backoff(base=5, max=1), "backoff.max"),
        (lambda: Backoff(jitter=2), "backoff.jitter"),
        (lambda: TopicBackoff(base=-1), "backoff.base"),
        (lambda: TopicBackoff(max="soon"), "backoff.max"),
        (lambda: TopicBackoff(base=5, max=1), "backoff.max"),
        (lambda: TopicBackoff(jitter=-0.1), "backoff.jitter"),
        (lambda: Retry(delay=-1), "delay"),
        (lambda: Retry(delay="soon"), "delay"),
    ],
)
def test_bad_retry_settings_name_the_field(make: Any, argument: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        make()
    assert caught.value.argument == argument


async def test_a_handler_raising_cancelled_error_itself_is_a_failure(
    client: AsyncClient, topic: str
) -> None:
    async def handler(job: Job) -> None:
        await asyncio.sleep(0)
        raise asyncio.CancelledError()  # not the worker stopping: an error like any other

    await client.put(topic, "j", b"", max_attempts=1)
    async with serving(new_worker(client, {topic: handler})):

        async def dead() -> bool:
            return (await client.stats(topic)).dead == 1

        await wait_until(dead)
    job = await client.get(topic, "j")
    assert job is not None and job.last_error is not None and "CancelledError" in job.last_error


class _OwnBaseError(BaseException):
    """A library's exception that does not derive from Exception."""


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_a_base_exception_from_a_handler_fails_only_its_job(
    client: AsyncClient, topic: str, kind: str
) -> None:
    """A BaseException left the runner: the Worker stopped ("worker task failed") and the job
    stayed reserved until its ttr."""

    def fail(job: Job) -> None:
        if job.attempts == 1:
            raise GeneratorExit() if job.id == "gen" else _OwnBaseError("own")

    async def async_fail(job: Job) -> None:
        await asyncio.sleep(0)
        fail(job)

    handler = async_fail if kind == "async" else fail
    await client.put_many(topic, [("gen", b""), ("own", b"")])
    backoff = Backoff(base=0.05, max=0.05, jitter=0)
    async with serving(new_worker(client, {topic: handler}, backoff=backoff)) as task:

        async def acked() -> bool:
            return (await client.stats(topic)).total_acked == 2

        await wait_until(acked)
        assert not task.done()
    for job_id, error in (("gen", "GeneratorExit"), ("own", "_OwnBaseError: own")):
        history = await client.history(topic, job_id)
        assert history is not None and history.attempts == 2
        assert [e.kind for e in history.events][-3:] == ["retried", "reserved", "acked"]
        assert history.last_error is not None and error in history.last_error


@pytest.mark.parametrize("kind", ["async", "sync"])
@pytest.mark.parametrize("exit", [SystemExit(3), KeyboardInterrupt()])
async def test_a_handler_raising_system_exit_stops_the_worker_gracefully(
    client: AsyncClient, topic: str, kind: str, exit: BaseException
) -> None:
    """SystemExit and KeyboardInterrupt escaped the event loop: no graceful stop, the running
    jobs left reserved. Now the job fails, the others finish, and run() raises it."""
    other_started = asyncio.Event()

    async def handler(job: Job) -> None:
        if job.id == "other":
            other_started.set()
            await asyncio.sleep(0.3)
            return
        await other_started.wait()
        if kind == "sync":
            await asyncio.to_thread(functools.partial(_raise, exit))
        raise exit

    await client.put_many(topic, [("other", b""), ("exits", b"")])
    worker = new_worker(client, {topic: handler}, concurrency=2)

    async def run() -> BaseException | None:  # a task ending with SystemExit ends the loop
        try:
            await worker.run()
        except (SystemExit, KeyboardInterrupt) as raised:
            return raised
        return None

    assert await asyncio.wait_for(run(), 10) is exit
    stats = await client.stats(topic)
    assert (stats.total_acked, stats.reserved, stats.total_released) == (1, 0, 1)
    job = await client.get(topic, "exits")
    assert job is not None and job.attempts == 1 and type(exit).__name__ in (job.last_error or "")


def _raise(exc: BaseException) -> None:
    raise exc


def test_handler_kinds_are_told_apart() -> None:
    async def coroutine_function(job: Job) -> None: ...

    class AsyncCallable:
        async def __call__(self, job: Job) -> None: ...

    assert is_async(coroutine_function) and is_async(functools.partial(coroutine_function))
    assert is_async(AsyncCallable())
    assert not is_async(print) and not is_async(lambda job: None)


async def test_watched_passes_results_and_exceptions_through() -> None:
    suspended = []

    async def quick() -> int:
        return 1

    async def slow() -> int:
        await asyncio.sleep(0.01)
        return 2

    async def failing() -> None:
        await asyncio.sleep(0)
        raise ValueError("x")

    assert await Watched(quick(), lambda: suspended.append("quick")) == 1
    assert await Watched(slow(), lambda: suspended.append("slow")) == 2
    with pytest.raises(ValueError, match="x"):
        await Watched(failing(), lambda: suspended.append("failing"))
    assert suspended == ["slow", "failing"]

    cleaned_up = asyncio.Event()

    async def cancellable() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            cleaned_up.set()

    async def wrapped() -> None:
        await Watched(cancellable(), lambda: None)

    task = asyncio.create_task(wrapped())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned_up.is_set()  # the cancellation reached the coroutine


async def test_the_worker_rides_out_a_redis_restart(tmp_path: Path) -> None:
    """Redis killed and restarted from its AOF: the worker reconnects and carries on."""
    ran: asyncio.Queue[str] = asyncio.Queue()

    async def handler(job: Job) -> None:
        ran.put_nowait(job.id)

    server = EmbeddedRedis(tmp_path, binary=BINARIES["redis6"], appendfsync="always").start()
    try:
        async with AsyncClient.from_url(server.url) as client:
            async with serving(new_worker(client, {"restart": handler})):
                await client.put("restart", "before", b"")
                assert await asyncio.wait_for(ran.get(), 5) == "before"
                await client.put("restart", "during", b"", delay=1.0)  # due while Redis is down
                server.kill()
                await asyncio.sleep(0.3)
                server.start()
                assert await asyncio.wait_for(ran.get(), 15) == "during"
                for _ in range(3):  # the first use of a pooled connection that died may fail
                    with contextlib.suppress(BackendError):
                        await client.put("restart", "after", b"")
                        break
                assert await asyncio.wait_for(ran.get(), 5) == "after"
            stats = await client.stats("restart")
            assert (stats.ready, stats.reserved, stats.scheduled) == (0, 0, 0)
    finally:
        server.stop()


async def test_a_job_finished_during_an_outage_longer_than_its_ttr_runs_once(
    tmp_path: Path,
) -> None:
    """Its ack failed while Redis was down; back, the worker requeued its timed-out reservation
    before retrying the ack, and the job ran a second time."""
    runs: list[str] = []
    finished = asyncio.Event()

    async def handler(job: Job) -> None:
        runs.append(job.id)
        await asyncio.sleep(0.3)
        finished.set()

    server = EmbeddedRedis(tmp_path, binary=BINARIES["redis6"], appendfsync="always").start()
    try:
        async with AsyncClient.from_url(server.url) as client:
            async with serving(new_worker(client, {"outage": handler})):
                await client.put("outage", "j", b"", ttr=1)
                await wait_until(lambda: _done(runs == ["j"]))
                server.kill()
                await asyncio.wait_for(finished.wait(), 5)  # its ack fails
                await asyncio.sleep(1.5)  # past the reservation's deadline
                server.start()

                async def settled() -> bool:
                    with contextlib.suppress(BackendError):
                        stats = await client.stats("outage")
                        return stats.total_acked == 1 or stats.total_requeued > 0
                    return False

                await wait_until(settled, timeout=15)
                await asyncio.sleep(0.3)
            stats = await client.stats("outage")
            assert (stats.total_acked, stats.total_requeued, runs) == (1, 0, ["j"])
    finally:
        server.stop()


async def test_without_a_backoff_the_topic_settings_apply(client: AsyncClient, topic: str) -> None:
    starts: list[float] = []

    async def handler(job: Job) -> None:
        starts.append(time.monotonic())
        if job.attempts == 1:
            raise ValueError("first try fails")

    await client.configure(topic, backoff=0.3, backoff_max=5)
    await client.put(topic, "j", b"")
    async with serving(new_worker(client, {topic: handler})):

        async def acked() -> bool:
            return (await client.stats(topic)).total_acked == 1

        await wait_until(acked)
    gap = starts[1] - starts[0]
    assert 0.3 * 0.8 - 0.002 <= gap <= 0.3 + 0.25, gap  # up to 20% jitter off the base


async def test_handlers_that_wait_still_share_round_trips(
    client: AsyncClient, topic: str, raw_redis: redis.Redis
) -> None:
    async def handler(job: Job) -> None:
        await asyncio.sleep(random.uniform(0, 0.004))

    # reserve + ack per job would be 800 scripts; finished jobs gather before a refill
    assert await scripts_to_drain(client, raw_redis, topic, handler, 400, 20) < 400


async def test_a_burst_of_failures_shares_a_few_connections(
    client: AsyncClient, topic: str, raw_redis: redis.Redis
) -> None:
    gate = asyncio.Event()
    waiting = 0

    async def handler(job: Job) -> None:
        nonlocal waiting
        waiting += 1
        if waiting == 200:
            gate.set()
        await gate.wait()
        raise ValueError("all at once")

    await client.put_many(topic, [(str(i), b"") for i in range(200)], max_attempts=1)
    clients_before = raw_redis.info("clients")["connected_clients"]
    async with serving(new_worker(client, {topic: handler}, concurrency=200)):

        async def all_dead() -> bool:
            return (await client.stats(topic)).dead == 200

        await wait_until(all_dead)
        opened = raw_redis.info("clients")["connected_clients"] - clients_before
    assert opened <= 24, opened  # 16 for releases, the listener, the lease loop, the test


async def test_a_sync_handler_sees_job_cancelled_and_an_async_one_is_cancelled(
    client: AsyncClient, topic: str
) -> None:
    seen: list[tuple[str, float]] = []
    started: asyncio.Queue[str] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    sync_topic = f"{topic}-sync"

    def blocking(job: Job) -> None:
        loop.call_soon_threadsafe(started.put_nowait, job.id)
        assert job.cancellation is not None
        if job.cancellation.wait(10):  # a real handler would check job.cancelled between steps
            seen.append((job.id, time.time()))

    async def waiting(job: Job) -> None:
        await started.put(job.id)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append((job.id, time.time()))
            raise

    async with serving(new_worker(client, {sync_topic: blocking, topic: waiting})):
        for name, cancel in (
            (sync_topic, client.abort),
            (topic, client.delete),
        ):
            await client.put(name, "j", b"")
            assert await asyncio.wait_for(started.get(), 5) == "j"
            asked, before = time.time(), len(seen)
            assert await cancel(name, "j")
            await wait_until(lambda n=before: _done(len(seen) > n))
            assert seen[-1][1] - asked < 0.1
        await client.put(topic, "next", b"")  # the runner goes on with other jobs
        assert await asyncio.wait_for(started.get(), 5) == "next"
        await client.delete(topic, "next")


async def test_a_lease_found_lost_by_its_heartbeat_cancels_the_handler(
    client: AsyncClient, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cancel on the wake channel may be missed (a subscription dropped or killed); the
    # heartbeat's touch then finds the lease gone. It only logged that, and the handler ran
    # on beside the attempt that took the job over.
    monkeypatch.setattr(Worker, "_aborter", lambda self, topic: lambda job_id, token: None)
    started: asyncio.Queue[int] = asyncio.Queue()
    cancelled: list[int] = []

    async def waiting(job: Job) -> None:
        await started.put(job.attempts)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(job.attempts)
            raise

    await client.put(topic, "j", b"", ttr=1)
    async with serving(new_worker(client, {topic: waiting})):
        assert await asyncio.wait_for(started.get(), 5) == 1
        assert await client.expire_many(topic, ["j"]) == 1  # its cancel message is not heard
        await wait_until(lambda: _done(cancelled == [1]))  # by the next touch, within ttr / 2
        assert await asyncio.wait_for(started.get(), 5) == 2  # the next attempt runs
        await client.delete(topic, "j")


async def test_a_plain_function_returning_a_coroutine_is_cancelled_as_an_async_handler(
    client: AsyncClient, topic: str
) -> None:
    # lambda job: work(job): the coroutine it returns runs on the loop, where nothing
    # cancelled it: a deleted job's work ran on to its end
    started: asyncio.Queue[str] = asyncio.Queue()
    cancelled: list[str] = []

    async def work(job: Job) -> None:
        await started.put(job.id)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(job.id)
            raise

    async with serving(new_worker(client, {topic: lambda job: work(job)})):
        await client.put(topic, "j", b"")
        assert await asyncio.wait_for(started.get(), 5) == "j"
        assert await client.delete(topic, "j")
        await wait_until(lambda: _done(cancelled == ["j"]))
        await client.put(topic, "next", b"")  # the runner goes on with other jobs
        assert await asyncio.wait_for(started.get(), 5) == "next"
        await client.delete(topic, "next")


async def test_a_cancellation_after_the_handler_ended_leaves_the_runner_serving(
    client: AsyncClient, topic: str
) -> None:
    """The handler fails as its job is deleted: the cancellation came while the runner
    released the attempt, and killed the runner. With concurrency 1 the next job was leased,
    kept reserved by heartbeats, and never run."""
    ran: list[str] = []

    async def handler(job: Job) -> None:
        ran.append(job.id)
        if job.id.startswith("fails"):
            await client.delete(topic, job.id)  # its cancellation is read after the raise
            raise ValueError("failed as it was deleted")

    async with serving(new_worker(client, {topic: handler}, concurrency=1)):
        for i in range(3):
            await client.put(topic, f"fails-{i}", b"")
            await wait_until(lambda i=i: _done(len(ran) == 2 * i + 1))
            await asyncio.sleep(0.05)  # the cancellation is read
            await client.put(topic, f"next-{i}", b"")
            await wait_until(lambda i=i: _done(len(ran) == 2 * i + 2), timeout=5)
        assert (await client.stats(topic)).total_acked == 3


async def test_a_handler_that_swallows_its_cancellation_leaves_the_next_cancellable(
    client: AsyncClient, topic: str
) -> None:
    """A swallowed job cancellation left the runner's cancelling() count at 1: the next job's
    cancellation was then taken for the worker stopping, and the runner ended."""
    started: asyncio.Queue[str] = asyncio.Queue()
    cancelled: list[str] = []

    async def handler(job: Job) -> None:
        await started.put(job.id)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(job.id)
            if job.id != "swallows":
                raise

    async with serving(new_worker(client, {topic: handler}, concurrency=1)):
        for job_id in ("swallows", "raises", "last"):
            await client.put(topic, job_id, b"")
            assert await asyncio.wait_for(started.get(), 5) == job_id
            assert await client.delete(topic, job_id)
            await wait_until(lambda n=job_id: _done(n in cancelled))
    assert cancelled == ["swallows", "raises", "last"]


async def test_a_cancellation_a_library_swallowed_is_sent_again(
    client: AsyncClient, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.11's asyncio.wait_for (in redis-py's sends) loses about half the cancellations
    that land in a command: the handler went on to its end (a deleted job's email sent all
    the same). The Worker sends it again (on 3.11; here shortened, on any Python)."""
    monkeypatch.setattr(worker_module, "RECANCEL_AFTER", (0.2, 0.5))
    started: asyncio.Queue[str] = asyncio.Queue()
    cancelled: list[tuple[str, float]] = []

    async def handler(job: Job) -> None:
        await started.put(job.id)
        with contextlib.suppress(asyncio.CancelledError):  # as the library did
            await asyncio.sleep(10)
        try:
            await asyncio.sleep(10)  # the handler's next step
        except asyncio.CancelledError:
            cancelled.append((job.id, time.monotonic()))
            raise

    async with serving(new_worker(client, {topic: handler}, concurrency=1)):
        for job_id in ("first", "second"):  # the runner goes on with the next job
            await client.put(topic, job_id, b"")
            assert await asyncio.wait_for(started.get(), 5) == job_id
            deleted = time.monotonic()
            assert await client.delete(topic, job_id)
            await wait_until(lambda n=job_id: _done(n in [c[0] for c in cancelled]), timeout=5)
            assert 0.2 <= cancelled[-1][1] - deleted < 0.5
    assert [c[0] for c in cancelled] == ["first", "second"]


@pytest.mark.parametrize("waits", [True, False])
async def test_a_sync_handlers_awaitable_is_cancelled_when_its_job_was_meanwhile(
    client: AsyncClient, topic: str, waits: bool
) -> None:
    """A job deleted while its sync handler's thread ran: the coroutine it returned then ran
    to its end (the cancellation had found no task to cancel). Not run at all now, also one
    that would end without waiting (a cancel of the runner would have come later, killing
    the runner at its next wait)."""
    loop = asyncio.get_running_loop()
    started: asyncio.Queue[str] = asyncio.Queue()
    ran: list[str] = []

    async def rest(job: Job) -> None:
        if waits:
            await asyncio.sleep(5)
        ran.append(job.id)

    def handler(job: Job) -> Any:
        loop.call_soon_threadsafe(started.put_nowait, job.id)
        assert job.cancellation is not None and job.cancellation.wait(5)
        return rest(job)

    async with serving(new_worker(client, {topic: handler}, concurrency=1)) as running:
        await client.put(topic, "j", b"")
        assert await asyncio.wait_for(started.get(), 5) == "j"
        assert await client.delete(topic, "j")
        await client.put(topic, "next", b"")  # its turn comes once "j"'s coroutine ended
        assert await asyncio.wait_for(started.get(), 2) == "next"
        assert await client.delete(topic, "next")
        await client.put(topic, "last", b"")  # the runner lives on
        assert await asyncio.wait_for(started.get(), 2) == "last"
        assert await client.delete(topic, "last")
        assert not running.done()
    assert ran == []


async def test_a_stop_is_not_taken_for_a_job_cancellation_its_handler_ignored(
    client: AsyncClient, topic: str
) -> None:
    """A handler that ignores its job's cancellation (uncancel) and goes on: the stop's own
    cancellation was then taken for the job's, swallowed, and the runner outlived run()."""
    started: asyncio.Queue[str] = asyncio.Queue()

    async def handler(job: Job) -> None:
        await started.put(job.id)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            assert task is not None
            task.uncancel()  # ignored, the count taken back as asyncio allows
        await asyncio.sleep(10)

    worker = new_worker(client, {topic: handler}, concurrency=1, grace=0.1)
    async with serving(worker) as running:
        await client.put(topic, "j", b"")
        assert await asyncio.wait_for(started.get(), 5) == "j"
        assert await client.delete(topic, "j")
        await asyncio.sleep(0.1)
    await asyncio.wait_for(running, 5)
    assert worker._abandoned == 0


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_replaced_job_whose_handler_returns_anyway_is_not_acked(
    client: AsyncClient, topic: str, kind: str
) -> None:
    """The README: a cancelled job's result is not applied. A sync handler that returned after
    seeing job.cancelled (or an async one that swallowed the cancellation) was acked: the old
    version's attempt was recorded as done, with its result."""
    loop = asyncio.get_running_loop()
    started: asyncio.Queue[bytes] = asyncio.Queue()

    def blocking(job: Job) -> str:
        loop.call_soon_threadsafe(started.put_nowait, job.body)
        if job.body == b"v1":
            assert job.cancellation is not None and job.cancellation.wait(10)
        return f"done {job.body.decode()}"

    async def swallowing(job: Job) -> str:
        await started.put(job.body)
        if job.body == b"v1":
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(10)
        return f"done {job.body.decode()}"

    handler = blocking if kind == "sync" else swallowing
    async with serving(new_worker(client, {topic: handler})):
        await client.put(topic, "j", b"v1")
        assert await asyncio.wait_for(started.get(), 5) == b"v1"
        await client.put(topic, "j", b"v2", replace=True)
        assert await asyncio.wait_for(started.get(), 5) == b"v2"

        async def finished() -> bool:
            history = await client.history(topic, "j")
            return history is not None and history.outcome is not None

        await wait_until(finished)
    history = await client.history(topic, "j")
    assert history is not None and history.result == b"done v2"
    kinds = [(e.kind.value, e.version) for e in history.events]
    assert kinds[-4:] == [("replaced", 1), ("released", 1), ("reserved", 2), ("acked", 2)], kinds
    assert (await client.stats(topic)).total_acked == 1


async def _done(value: bool) -> bool:
    return value


async def test_a_worker_loads_the_scripts_before_its_first_lease(tmp_path: Path) -> None:
    """A Worker that finds nothing due at start has its scripts loaded all the same: the first
    job due later meets no NOSCRIPT (a SCRIPT LOAD and a retry would make it ~5 ms late)."""
    from redisched import scripts

    ran: asyncio.Queue[str] = asyncio.Queue()

    async def handler(job: Job) -> None:
        ran.put_nowait(job.id)

    server = EmbeddedRedis(tmp_path, binary=BINARIES["redis7"], persistent=False).start()
    try:
        raw = redis.Redis.from_url(server.url)
        async with (
            AsyncClient.from_url(server.url) as client,
            serving(new_worker(client, {"fresh": handler})),
        ):
            shas = [s.sha for s in scripts.load_all().values()]
            assert all(raw.script_exists(*shas))
            raw.config_resetstat()
            await client.put("fresh", "later", b"", delay=0.2)
            assert await asyncio.wait_for(ran.get(), 5) == "later"
        errors = raw.info("errorstats")
        assert "errorstat_NOSCRIPT" not in errors, errors
    finally:
        server.stop()


async def test_a_worker_reads_the_server_clock_to_the_microsecond_at_start(tmp_path: Path) -> None:
    """Leases carry the server's clock floored to the millisecond: a Worker that has seen one
    could wake a millisecond late. It reads TIME (microseconds) at start instead."""
    from redisched.warmup import CLOCK_SAMPLES

    server = EmbeddedRedis(tmp_path, binary=BINARIES["redis7"], persistent=False).start()
    try:
        raw = redis.Redis.from_url(server.url)
        raw.config_resetstat()
        async with AsyncClient.from_url(server.url) as client:
            worker = new_worker(client, {"clocked": lambda job: _done(True)})
            async with serving(worker):
                sent = time.time()
                seconds, microseconds = raw.time()
                received = time.time()
                server_ms = seconds * 1000 + microseconds / 1000
                low, high = server_ms - received * 1000, server_ms - sent * 1000
                offset = worker._clock._offset_ms
                assert offset is not None and low - 1 <= offset <= high  # 1 ms: a loaded machine
        assert raw.info("commandstats")["cmdstat_time"]["calls"] >= CLOCK_SAMPLES
    finally:
        server.stop()


async def test_leases_leave_ahead_of_a_run_at_learn_the_lead_and_never_run_a_job_early(
    client: AsyncClient, topic: str
) -> None:
    """The lease for a job due later leaves ``lead`` ahead (the first call after idle is slow);
    the server decides what is due, so one that came early takes the job one lease later."""
    started: list[tuple[float, float]] = []

    async def handler(job: Job) -> None:
        started.append((time.time(), job.run_at.timestamp()))

    worker = new_worker(client, {topic: handler})
    async with serving(worker):
        leads = [worker._clock.lead.seconds]
        for index in range(12):
            await client.put(topic, f"j{index}", b"", delay=0.03)
            await wait_until(lambda n=index + 1: _done(len(started) == n))
            leads.append(worker._clock.lead.seconds)
    assert all(at >= run_at - 0.0005 for at, run_at in started), started  # ms rounding of run_at
    assert len(set(leads)) > 1  # each lease sent ahead taught the lead


async def test_a_second_signal_says_it_skips_the_grace_period(
    client: AsyncClient, topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The second SIGINT/SIGTERM ends the grace period; its log line said "stopping (send it
    again to skip the grace period)" as the first did, which read as if it had done nothing."""
    import signal

    worker = Worker(client, {topic: lambda job: None})
    with caplog.at_level(logging.INFO, logger="redisched.worker"):
        worker._on_signal(signal.SIGINT)
        worker._on_signal(signal.SIGINT)
    lines = [r.getMessage() for r in caplog.records if "SIGINT" in r.getMessage()]
    assert lines == [
        "SIGINT: stopping (send it again to skip the grace period)",
        "SIGINT again: skipping the grace period",
    ]
    assert worker._force_requested
