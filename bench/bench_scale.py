"""Cost per operation as the number of scheduled future jobs grows: 0, 100k, 1M.

Each level gets its own private redis-server whose topic is filled with ``level`` jobs due
tomorrow (``put_many``, 1000 per call). Then, in turn on each server and ``--repeats`` times
(interleaved, so that the drift of a shared machine hits every level alike), ``--ops`` jobs
due now are put one at a time, and reserved+acked one at a time, in the same topic. Two costs
per level: the client's wall-clock microseconds per operation, and Redis's own microseconds
per EVALSHA from ``INFO commandstats`` (reset before each phase), which shows what the
scripts pay for the larger zsets without the client's noise.

Run: ``python -m bench.bench_scale [--levels 0,100000,1000000] [--ops N]``; one JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable
from typing import Any

import redis

import redisched
from bench.common import emit, private_redis

BODY = b"x" * 100
FILL_BATCH = 1000
TOPIC = "scale"


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


class Level:
    """One private redis-server holding ``level`` scheduled jobs in the measured topic."""

    def __init__(self, url: str, level: int) -> None:
        self.conn = redis.Redis.from_url(url)
        self.client = redisched.Client(self.conn)
        self.level = level
        self.counter = iter(range(10**9))
        self.puts: list[tuple[float, float]] = []
        self.takes: list[tuple[float, float]] = []
        fill(self.client, TOPIC, level)

    def measure(self, ops: int) -> None:
        """One put phase and one reserve+ack phase of ``ops`` operations each."""

        def put_now() -> None:
            for _ in range(ops):
                self.client.put(TOPIC, f"now-{next(self.counter)}", BODY)

        def reserve_ack() -> None:
            for _ in range(ops):
                job = self.client.reserve(TOPIC)
                if job is None:
                    raise ScaleError("a due job went missing")
                self.client.ack(job)

        self.puts.append(phase(self.conn, ops, put_now))
        self.takes.append(phase(self.conn, ops, reserve_ack))

    def costs(self) -> dict[str, float]:
        """Medians of the phases; checks the scheduled jobs are all still there."""
        scheduled = self.client.stats(TOPIC).scheduled
        if scheduled != self.level:
            raise ScaleError(f"expected {self.level} scheduled jobs, found {scheduled}")
        return {
            "put_us": statistics.median(p[0] for p in self.puts),
            "put_server_us": statistics.median(p[1] for p in self.puts),
            # two EVALSHA per reserve+ack: report the pair's server cost
            "reserve_ack_us": statistics.median(t[0] for t in self.takes),
            "reserve_ack_server_us": 2 * statistics.median(t[1] for t in self.takes),
        }


def measure(levels: list[int], ops: int, repeats: int) -> dict[int, dict[str, float]]:
    """Every level on its own server, the phases interleaved so drift hits all levels alike."""
    with contextlib.ExitStack() as stack:
        servers = [(level, stack.enter_context(private_redis())) for level in levels]
        states = [Level(server.url, level) for level, server in servers]
        for _ in range(repeats):
            for state in states:
                state.measure(ops)
        return {state.level: state.costs() for state in states}


def main() -> None:
    """Run every level and print the costs with their ratio to the empty topic."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="0,100000,1000000")
    parser.add_argument("--ops", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    levels = [int(level) for level in args.levels.split(",")]
    result: dict[str, Any] = {"ops": args.ops, "levels": levels}
    measured = measure(levels, args.ops, args.repeats)
    base = measured[levels[0]]
    for level in levels:
        costs = measured[level]
        for name, value in costs.items():
            result[f"{name}_at_{level}"] = round(value, 2)
            result[f"{name}_ratio_at_{level}"] = round(value / base[name], 3) if base[name] else 0
    emit("scale", result)


if __name__ == "__main__":
    main()
