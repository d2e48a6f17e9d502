"""What a schedule's next occurrence costs the reserve that hands out the current one.

Two figures per kind of schedule, each a ratio to plain jobs measured in the same run on the
same redis-server, with a hand-moved clock (one occurrence due per step, as in production):

- server: microseconds per ``reserve`` script inside Redis (``INFO commandstats``), a plain due
  job against a due occurrence whose next one the script puts. This is the cost the issue
  bounds (<= 10%): the extra Lua work of the same atomic step.
- client: reserve + ack per second through ``Client`` (round trips included; the ack of an
  occurrence also reads the topic's refill set in the same round trip, and a cron schedule's
  refills are amortised in it).

Run: ``python -m bench.bench_schedules [--ops N]``
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

Setup = Callable[[redisched.Client, str], None]
T0 = 1_899_999_960.0  # on a whole minute, for the cron schedule
BODY = b"x" * 100


class Clock:
    """A clock the benchmark moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def _evalsha_usec(conn: redis.Redis) -> int:
    stats: dict[str, Any] = conn.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {"usec": 0})["usec"])


class Kind:
    """One kind of work on its own topic and clock: plain jobs, an every or a cron schedule."""

    def __init__(self, conn: redis.Redis, name: str, step: float) -> None:
        self.name, self.step, self.clock = name, step, Clock()
        self.client = redisched.Client(conn, clock=self.clock)
        self.topic = f"{name}-{time.perf_counter_ns()}"
        self.server_us: list[int] = []
        self.client_s: list[float] = []

    def at(self, i: int) -> None:
        """Move this kind's clock to its i-th due time."""
        self.clock.now = T0 + i * self.step


def _measure(url: str, ops: int, kinds: list[tuple[str, float, Setup]]) -> dict[str, Any]:
    """Per-operation figures, the kinds interleaved op by op so that the load of a shared
    machine falls on all of them alike; medians, so that a descheduled moment does not count.

    Server: Redis's own EVALSHA time around each reserve only (the acks, and the refills of a
    cron schedule that follow them, stay out). Client: wall time of reserve + ack.
    """
    conn = redis.Redis.from_url(url)
    work = [Kind(conn, name, step) for name, step, _ in kinds]
    for kind, (_, _, setup) in zip(work, kinds, strict=True):
        kind.at(0)
        setup(kind.client, kind.topic)
    work[0].client.reserve("warm-up")  # load the scripts outside the measurement
    for i in range(ops):
        for kind in work:
            kind.at(i)
            before = _evalsha_usec(conn)
            started = time.perf_counter()
            job = kind.client.reserve(kind.topic)
            kind.server_us.append(_evalsha_usec(conn) - before)
            assert job is not None, (kind.name, i)
            kind.client.ack(job)
            kind.client_s.append(time.perf_counter() - started)
    conn.close()
    out: dict[str, Any] = {}
    for kind in work:
        out[f"{kind.name}_server_us"] = statistics.median(kind.server_us)
        out[f"{kind.name}_reserve_ack_us"] = statistics.median(kind.client_s) * 1e6
    return out


def main() -> None:
    """Run and print the schedules benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=3000)
    args = parser.parse_args()
    n = args.ops

    def plain(step: float) -> Callable[[redisched.Client, str], None]:
        def setup(client: redisched.Client, topic: str) -> None:
            for i in range(n):  # one job due per step, as with an occurrence
                client.put(topic, f"j{i}", BODY, run_at=T0 + i * step)

        return setup

    def every(client: redisched.Client, topic: str) -> None:
        client.schedule(topic, "tick", BODY, every=1, start_at=T0)

    def cron(client: redisched.Client, topic: str) -> None:
        client.schedule(topic, "tick", BODY, cron="* * * * *", start_at=T0)

    results: dict[str, Any] = {"ops": n}
    with private_redis() as server:
        kinds = [("plain", 1.0, plain(1.0)), ("every", 1.0, every), ("cron", 60.0, cron)]
        results.update(_measure(server.url, n, kinds))
    for kind in ("every", "cron"):
        results[f"{kind}_server_cost_ratio"] = (
            results[f"{kind}_server_us"] / results["plain_server_us"]
        )
        results[f"{kind}_reserve_ack_ratio"] = (
            results[f"{kind}_reserve_ack_us"] / results["plain_reserve_ack_us"]
        )
    emit("schedules", {k: round(v, 3) if isinstance(v, float) else v for k, v in results.items()})


if __name__ == "__main__":
    main()
