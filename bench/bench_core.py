"""Core figures: put/s and reserve+ack/s through ``Client``, and Redis memory per job.

Each rate is reported next to a bare redis-py EVALSHA of a trivial script on the same
redis-server in the same run (the ceiling of any Lua-based queue from Python), as a ratio.

Run: ``python -m bench.bench_core [--jobs N] [--memory-jobs N]``
"""

from __future__ import annotations

import argparse

import redis

import redisched
from bench.common import TRIVIAL_SCRIPT, emit, median_rate, private_redis

BODY = b"x" * 100


def bare_evalsha(conn: redis.Redis, n: int) -> None:
    """The baseline: n unpipelined EVALSHA calls of a script that returns 1."""
    sha = conn.script_load(TRIVIAL_SCRIPT)
    for _ in range(n):
        conn.evalsha(sha, 0)


def bare_evalsha_pipelined(conn: redis.Redis, n: int, batch: int = 100) -> None:
    """The pipelined baseline: n EVALSHA calls, ``batch`` per round trip."""
    sha = conn.script_load(TRIVIAL_SCRIPT)
    for start in range(0, n, batch):
        pipe = conn.pipeline(transaction=False)
        for _ in range(min(batch, n - start)):
            pipe.evalsha(sha, 0)
        pipe.execute()


def memory_per_job(url: str, jobs: int) -> float:
    """Bytes of Redis memory per scheduled job with a 100-byte body and a 10-char id."""
    conn = redis.Redis.from_url(url)
    client = redisched.Client(conn)
    client.put("warmup", "w", b"")  # create the topics set and load the scripts first
    before = conn.info("memory")["used_memory"]
    batch = 1000
    for start in range(0, jobs, batch):
        client.put_many(
            "memory", [(f"job-{i:06d}", BODY) for i in range(start, start + batch)], delay=86400
        )
    after = conn.info("memory")["used_memory"]
    return (after - before) / jobs


def main() -> None:
    """Run and print the core benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--memory-jobs", type=int, default=100_000)
    args = parser.parse_args()
    n = args.jobs
    with private_redis() as server:
        conn = redis.Redis.from_url(server.url)
        client = redisched.Client(conn)
        counter = iter(range(10**9))

        def single_puts() -> None:
            for _ in range(n):
                client.put("single", f"j{next(counter)}", BODY)

        def batched_puts() -> None:
            for _ in range(0, n, 100):
                client.put_many("batched", [(f"b{next(counter)}", BODY) for _j in range(100)])

        def reserve_ack() -> None:
            for _ in range(n):
                client.ack(client.reserve("single"))

        def reserve_ack_batched() -> None:
            done: list[redisched.Job] = []
            for _ in range(n // 100):
                _, lease = client.ack_and_lease("batched", done, 100)
                done = lease.jobs
            client.ack_many("batched", done)

        results = {
            "bare_evalsha_per_s": median_rate(n, lambda: bare_evalsha(conn, n)),
            "bare_evalsha_pipelined_per_s": median_rate(n, lambda: bare_evalsha_pipelined(conn, n)),
            "put_per_s": median_rate(n, single_puts),
            "put_many_per_s": median_rate(n, batched_puts),
            "reserve_ack_per_s": median_rate(n, reserve_ack),
            "ack_and_lease_batched_per_s": median_rate(n, reserve_ack_batched),
        }
        results["put_ratio"] = results["put_per_s"] / results["bare_evalsha_per_s"]
        results["put_many_ratio"] = (
            results["put_many_per_s"] / results["bare_evalsha_pipelined_per_s"]
        )
        results["reserve_ack_ratio"] = (
            results["reserve_ack_per_s"] / results["bare_evalsha_per_s"] / 2
        )
    with private_redis() as server:
        results["memory_bytes_per_job"] = memory_per_job(server.url, args.memory_jobs)
        results["memory_jobs"] = args.memory_jobs
    emit("core", {"jobs": n, **{k: round(v, 3) for k, v in results.items()}})


if __name__ == "__main__":
    main()
