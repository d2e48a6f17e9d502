"""Handlers that worker subprocesses run in the tests; each records what it did in Redis.

The CLI loads them as ``tests.worker_app:<name>``. They read ``REDISCHED_REDIS_URL`` (the same
variable the CLI reads) and write under the key prefix ``WORKER_APP_KEY``:

- ``<key>:runs``   hash id -> how many times a handler started for the job
- ``<key>:log``    list of "id attempts leased_ms reserved_until_ms started_ms pid token", one
  per start (leased_ms is reserved_until - ttr: when the lease was taken, as the workers here
  lease with each job's own ttr; token names the lease)
- ``<key>:alive:<pid>``  set when a process starts its first handler
- ``<key>:finished``  list of "id pid token" whose handler returned
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import time

import redis
import redis.asyncio

from redisched import Job


@functools.cache
def _conn() -> redis.asyncio.Redis:
    """This process's connection (a worker process runs one event loop)."""
    return redis.asyncio.Redis.from_url(os.environ["REDISCHED_REDIS_URL"])


class Recorder:
    """An async handler that records each start, then sleeps ``low``..``high`` seconds."""

    def __init__(self, low: float, high: float) -> None:
        self.low = low
        self.high = high

    async def __call__(self, job: Job) -> None:
        started = time.time()
        key = os.environ["WORKER_APP_KEY"]
        until = 0 if job.reserved_until is None else round(job.reserved_until.timestamp() * 1000)
        pid = os.getpid()
        pipe = _conn().pipeline(transaction=False)
        pipe.hincrby(f"{key}:runs", job.id, 1)
        leased = until - round(job.ttr * 1000)
        line = f"{job.id} {job.attempts} {leased} {until} {round(started * 1000)} {pid} {job.token}"
        pipe.rpush(f"{key}:log", line)
        pipe.set(f"{key}:alive:{pid}", 1)
        await pipe.execute()
        await asyncio.sleep(random.uniform(self.low, self.high))
        await _conn().rpush(f"{key}:finished", f"{job.id} {pid} {job.token}")


record = Recorder(0.005, 0.03)
"""Short jobs, for the kill -9 rounds."""

_SLOW = float(os.environ.get("WORKER_APP_SLOW", "0.5"))
slow = Recorder(_SLOW, _SLOW)
"""Jobs that take WORKER_APP_SLOW seconds (default 0.5), for stop and stale-lease tests."""


def failing(job: Job) -> None:
    """A sync handler that always fails."""
    raise ValueError(f"cannot process {job.id}")


async def limited(job: Job) -> None:
    """Counts the handlers in flight across every process (``<key>:inflight``), records each
    start as "level started_ms" in ``<key>:levels``, runs 10-40 ms, then ``<key>:finished``."""
    key = os.environ["WORKER_APP_KEY"]
    conn = _conn()
    level = await conn.incr(f"{key}:inflight")
    await conn.rpush(f"{key}:levels", f"{level} {round(time.time() * 1000)}")
    try:
        await asyncio.sleep(random.uniform(0.01, 0.04))
    finally:
        await conn.decr(f"{key}:inflight")
    await conn.rpush(f"{key}:finished", job.id)


async def cancellable(job: Job) -> None:
    """Records its start in ``<key>:started``, then waits a minute; when cancelled, records
    "id cancelled_ms" in ``<key>:cancelled``."""
    key = os.environ["WORKER_APP_KEY"]
    conn = _conn()
    try:  # a cancellation may come while the start is being recorded: shielded, as redis-py
        # swallows about half the CancelledErrors that land in a command (the Worker cancels
        # again after RECANCEL_AFTER, but this handler measures the first one's latency)
        await asyncio.shield(conn.rpush(f"{key}:started", job.id))
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        await conn.rpush(f"{key}:cancelled", f"{job.id} {time.time() * 1000:.3f}")
        raise


async def holding(job: Job) -> None:
    """Records "id token" in ``<key>:started``, then holds its job for a minute (until
    cancelled)."""
    key = os.environ["WORKER_APP_KEY"]
    conn = _conn()
    await asyncio.shield(conn.rpush(f"{key}:started", f"{job.id} {job.token}"))  # (cancellable)
    await asyncio.sleep(60)


async def stubborn(job: Job) -> None:
    """Records its start in ``<key>:started``, then runs for a minute, ignoring cancellation."""
    await _conn().rpush(f"{os.environ['WORKER_APP_KEY']}:started", job.id)
    ends = time.monotonic() + 60
    while time.monotonic() < ends:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(ends - time.monotonic())


def stuck(job: Job) -> None:
    """A sync handler that records its start in ``<key>:started``, then blocks its thread for a
    minute."""
    redis.Redis.from_url(os.environ["REDISCHED_REDIS_URL"]).rpush(
        f"{os.environ['WORKER_APP_KEY']}:started", job.id
    )
    time.sleep(60)


def stuck_or_exiting(job: Job) -> None:
    """``stuck`` for every job but one whose body is ``exit N``: that one raises SystemExit(N)
    (``interrupt``: KeyboardInterrupt) once the stuck one has started."""
    text = job.body.decode()
    if not text.startswith(("exit", "interrupt")):
        stuck(job)
        return
    key = os.environ["WORKER_APP_KEY"]
    conn = redis.Redis.from_url(os.environ["REDISCHED_REDIS_URL"])
    while conn.llen(f"{key}:started") == 0:
        time.sleep(0.01)
    if text == "interrupt":
        raise KeyboardInterrupt
    raise SystemExit(int(text.split()[1]))
