"""Helpers shared by the benchmarks: a private redis-server, timing, JSON output."""

from __future__ import annotations

import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from redisched.embedded import EmbeddedRedis

TRIVIAL_SCRIPT = "return 1"

PLAINEST_PUT_SCRIPT = """\
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], t[1] * 1000 + math.floor(t[2] / 1000), ARGV[1])
return 1"""
"""The least a Lua put can do and still schedule a job by id: store the body under the id and
index the id by the server's clock (no options, no versions, no history, no wake-up). Its
ratio to ``return 1`` is the ceiling of any Lua put's one-call ratio: a context figure, not
a baseline any goal is measured against."""

PLAINEST_RESERVE_SCRIPT = """\
local t = redis.call('TIME')
local first = redis.call('ZPOPMIN', KEYS[1])
if not first[1] then return false end
redis.call('ZADD', KEYS[2], t[1] * 1000 + math.floor(t[2] / 1000) + ARGV[1], first[1])
return {first[1], redis.call('HGET', KEYS[3], first[1])}"""
"""The least a Lua reserve can do and still lease a job by id: take the first ready id, hold it
until a deadline on the server's clock (ARGV[1] ms), return the id and its body (no token,
priority, attempts, limits, history or promotion of due scheduled jobs)."""

PLAINEST_ACK_SCRIPT = """\
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
return 1"""
"""The least a Lua ack can do: end the id's reservation and delete its job (no token check,
result, finished record or history). With :data:`PLAINEST_RESERVE_SCRIPT`, the ratio of a
pair to two ``return 1`` calls is the ceiling of any Lua queue's one-job reserve + ack: a
context figure, like :data:`PLAINEST_PUT_SCRIPT`'s."""


@contextmanager
def private_redis(binary: str | None = None) -> Iterator[EmbeddedRedis]:
    """A fresh redis-server without persistence, for one benchmark."""
    with (
        tempfile.TemporaryDirectory(prefix="redisched-bench-") as folder,
        EmbeddedRedis(Path(folder), binary=binary, persistent=False) as server,
    ):
        yield server


def rate(operations: int, action: Callable[[], Any]) -> float:
    """Operations per second of one call of ``action`` that performs ``operations``."""
    started = time.perf_counter()
    action()
    return operations / (time.perf_counter() - started)


def median_rate(operations: int, action: Callable[[], Any], repeats: int = 3) -> float:
    """The median of ``repeats`` measurements of ``rate``."""
    return statistics.median(rate(operations, action) for _ in range(repeats))


def paired_rates(
    operations: int,
    baseline: Callable[[int], Any],
    ours: Callable[[int], Any],
    blocks: int = 10,
    repeats: int = 3,
) -> tuple[float, float]:
    """Median rates of ``baseline`` and ``ours`` (each called with a count of operations).

    The two run in alternating blocks of ``operations / blocks`` (baseline, ours, baseline,
    ...), so that a shared machine's changing load falls on both alike; each repeat measures
    ``operations`` of each, and the medians over ``repeats`` are returned.
    """
    block = max(1, operations // blocks)
    base_rates, our_rates = [], []
    for _ in range(repeats):
        base_time = our_time = 0.0
        for _ in range(blocks):
            started = time.perf_counter()
            baseline(block)
            base_time += time.perf_counter() - started
            started = time.perf_counter()
            ours(block)
            our_time += time.perf_counter() - started
        base_rates.append(block * blocks / base_time)
        our_rates.append(block * blocks / our_time)
    return statistics.median(base_rates), statistics.median(our_rates)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import os

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def emit(name: str, results: dict[str, Any]) -> None:
    """Print one benchmark's results as a JSON line on stdout."""
    json.dump({"benchmark": name, "machine": machine(), **results}, sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
