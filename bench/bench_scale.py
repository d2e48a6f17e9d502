"""Cost per operation as the number of scheduled future jobs grows: 0, 100k, 1M.

A topic is filled with ``level`` jobs due tomorrow (``put_many``, 1000 per call), then in the
same topic ``--ops`` jobs due now are put one at a time and reserved+acked one at a time.
Two costs per level: the client's wall-clock microseconds per operation, and Redis's own
microseconds per EVALSHA from ``INFO commandstats`` (reset before each phase), which shows
what the scripts pay for the larger zsets without the client's noise. Each level runs on a
fresh private redis-server.

Run: ``python -m bench.bench_scale [--levels 0,100000,1000000] [--ops N]``; one JSON line.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import redis

import redisched
from bench.common import emit, private_redis

BODY = b"x" * 100
FILL_BATCH = 1000


class ScaleError(Exception):
    """The topic did not hold the jobs the benchmark put there."""


def fill(client: redisched.Client, topic: str, count: int) -> None:
    """Schedule ``count`` jobs a day ahead in ``topic``."""
    for start in range(0, count, FILL_BATCH):
        ids = range(start, min(start + FILL_BATCH, count))
        client.put_many(topic, [(f"future-{i:07d}", BODY) for i in ids], delay=86_400)


def evalsha_usec(conn: redis.Redis) -> float:
    """Redis's microseconds per EVALSHA since the last CONFIG RESETSTAT."""
    stats: dict[str, Any] = conn.info("commandstats")
    return float(stats.get("cmdstat_evalsha", {}).get("usec_per_call", 0.0))


def phase(conn: redis.Redis, ops: int, action: Callable[[], None]) -> tuple[float, float]:
    """(client µs per op, server µs per EVALSHA) of one run of ``action``."""
    conn.config_resetstat()
    started = time.perf_counter()
    action()
    wall = (time.perf_counter() - started) * 1e6 / ops
    return wall, evalsha_usec(conn)


def measure_level(level: int, ops: int, repeats: int) -> dict[str, float]:
    """Medians of ``repeats`` put and reserve+ack phases over ``level`` scheduled jobs."""
    with private_redis() as server:
        conn = redis.Redis.from_url(server.url)
        client = redisched.Client(conn)
        topic = "scale"
        fill(client, topic, level)
        counter = iter(range(10**9))
        puts: list[tuple[float, float]] = []
        takes: list[tuple[float, float]] = []

        def put_now() -> None:
            for _ in range(ops):
                client.put(topic, f"now-{next(counter)}", BODY)

        def reserve_ack() -> None:
            for _ in range(ops):
                job = client.reserve(topic)
                if job is None:
                    raise ScaleError("a due job went missing")
                client.ack(job)

        for _ in range(repeats):
            puts.append(phase(conn, ops, put_now))
            takes.append(phase(conn, ops, reserve_ack))
        scheduled = client.stats(topic).scheduled
        if scheduled != level:
            raise ScaleError(f"expected {level} scheduled jobs, found {scheduled}")
    return {
        "put_us": statistics.median(p[0] for p in puts),
        "put_server_us": statistics.median(p[1] for p in puts),
        # two EVALSHA per reserve+ack: report the pair's server cost
        "reserve_ack_us": statistics.median(t[0] for t in takes),
        "reserve_ack_server_us": 2 * statistics.median(t[1] for t in takes),
    }


def main() -> None:
    """Run every level and print the costs with their ratio to the empty topic."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="0,100000,1000000")
    parser.add_argument("--ops", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    levels = [int(level) for level in args.levels.split(",")]
    result: dict[str, Any] = {"ops": args.ops, "levels": levels}
    base: dict[str, float] = {}
    for level in levels:
        costs = measure_level(level, args.ops, args.repeats)
        base = base or costs
        for name, value in costs.items():
            result[f"{name}_at_{level}"] = round(value, 2)
            result[f"{name}_ratio_at_{level}"] = round(value / base[name], 3) if base[name] else 0
    emit("scale", result)


if __name__ == "__main__":
    main()
