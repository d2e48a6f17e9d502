"""History figures: throughput with history on vs off side by side, and what it costs in memory.

One private redis-server; two topics that differ only in their ``history`` setting. Every rate
is measured for both topics in short alternating blocks (on, off, on, off, ...; ``--repeats``
of each) so that both see the same machine load, and reported as the medians and their
same-run ratio on/off (issue 13 asks for >= 0.9):

- ``put``: single puts, one round trip each;
- ``reserve_ack``: reserve then ack, two round trips per job;
- ``worker``: one Worker (concurrency 50, no-op handler that returns None) draining N jobs.

Memory (Redis ``used_memory`` growth, 100-byte bodies, 10-character ids):

- ``live_bytes_per_job``: scheduled jobs with history on and off (the put event in the record);
- ``finished_bytes_per_job``: a finished record (history hash + finished zset), no result,
  feed off so that only the record counts; ``feed_bytes_per_event``: one feed entry;
- ``history_us``: one ``history()`` call with 1,000 and with all N finished jobs kept (it must
  not grow with the topic: a hash lookup, O(log n + the job's events)).

Run: ``python -m bench.bench_history [--jobs N] [--worker-jobs N] [--memory-jobs N]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import redis

import redisched
from bench.bench_worker import drain, fill, run_loop
from bench.common import emit, private_redis, rate

BODY = b"x" * 100


def side_by_side(
    repeats: int, on: Callable[[], float], off: Callable[[], float]
) -> dict[str, float]:
    """Medians of alternating runs of ``on`` and ``off`` (each returns a rate), and the ratio."""
    ons, offs = [], []
    for _ in range(repeats):
        ons.append(on())
        offs.append(off())
    a, b = statistics.median(ons), statistics.median(offs)
    return {"on_per_s": round(a, 1), "off_per_s": round(b, 1), "ratio": round(a / b, 3)}


def memory_growth(conn: redis.Redis, action: Callable[[], Any], count: int) -> float:
    """Bytes of used_memory added per item by ``action``."""
    before = int(conn.info("memory")["used_memory"])
    action()
    return (int(conn.info("memory")["used_memory"]) - before) / count


def throughput(url: str, n: int, worker_jobs: int, repeats: int) -> dict[str, Any]:
    """put, reserve+ack and worker rates with history on and off."""
    conn = redis.Redis.from_url(url)
    client = redisched.Client(conn)
    client.configure("off", history=False)
    client.configure("won", keep_finished=worker_jobs * repeats)
    client.configure("woff", history=False)
    counter = iter(range(10**9))

    def puts(topic: str) -> float:
        def run() -> None:
            for _ in range(n):
                client.put(topic, f"j{next(counter):09d}", BODY)

        return rate(n, run)

    def reserve_acks(topic: str) -> float:
        def run() -> None:
            for _ in range(n):
                client.ack(client.reserve(topic))

        return rate(n, run)

    def worker(topic: str) -> float:
        fill(url, topic, f"w{next(counter)}", worker_jobs)
        seconds = run_loop(drain(url, topic, worker_jobs, 50))
        return float(worker_jobs / seconds)

    return {
        "put": side_by_side(repeats, lambda: puts("on"), lambda: puts("off")),
        "reserve_ack": side_by_side(
            repeats, lambda: reserve_acks("on"), lambda: reserve_acks("off")
        ),
        "worker": side_by_side(repeats, lambda: worker("won"), lambda: worker("woff")),
    }


def memory(url: str, jobs: int) -> dict[str, Any]:
    """Bytes per live job (defaults, feed off, history off), per finished record, per event."""
    conn = redis.Redis.from_url(url)
    client = redisched.Client(conn)
    client.put("warmup", "w", b"")
    client.configure("mem-off", history=False)
    client.configure("mem-nofeed", keep_events=0)
    client.configure("feed", keep_events=jobs * 2)
    client.configure("done", keep_events=0, keep_finished=jobs)

    def put_many(topic: str, **options: Any) -> Callable[[], None]:
        def run() -> None:
            for start in range(0, jobs, 1000):
                ids = range(start, start + 1000)
                client.put_many(topic, [(f"job-{i:06d}", BODY) for i in ids], **options)

        return run

    def put_and_ack_all() -> None:
        put_many("done")()
        done: list[redisched.Job] = []
        while True:  # the live records go away as the finished ones are written
            _, lease = client.ack_and_lease("done", done, 1000)
            done = lease.jobs
            if not done:
                break

    day = {"delay": 86400}
    results = {
        "live_bytes_per_job_default": memory_growth(conn, put_many("mem-on", **day), jobs),
        "live_bytes_per_job_feed_off": memory_growth(conn, put_many("mem-nofeed", **day), jobs),
        "live_bytes_per_job_history_off": memory_growth(conn, put_many("mem-off", **day), jobs),
        "finished_bytes_per_job": memory_growth(conn, put_and_ack_all, jobs),
    }
    with_feed = memory_growth(conn, put_many("feed", **day), jobs)
    results["feed_bytes_per_event"] = with_feed - results["live_bytes_per_job_feed_off"]
    return {k: round(v, 1) for k, v in results.items()}


def history_cost(url: str, small: int, large: int) -> dict[str, float]:
    """Microseconds per history() with ``small`` and ``large`` finished jobs in the topic."""
    client = redisched.Client(redis.Redis.from_url(url))
    out: dict[str, float] = {}
    for size in (small, large):
        topic = f"size-{size}"
        client.configure(topic, keep_finished=size, keep_events=0)
        for start in range(0, size, 1000):
            client.put_many(
                topic, [(f"h{i:07d}", BODY) for i in range(start, min(size, start + 1000))]
            )
        done: list[redisched.Job] = []
        while True:
            _, lease = client.ack_and_lease(topic, done, 1000)
            done = lease.jobs
            if not done:
                break
        started = time.perf_counter()
        for i in range(2000):
            client.history(topic, f"h{i * 7 % size:07d}")
        out[f"history_us_at_{size}"] = round((time.perf_counter() - started) / 2000 * 1e6, 1)
    out["history_cost_ratio"] = round(
        out[f"history_us_at_{large}"] / out[f"history_us_at_{small}"], 3
    )
    return out


def main() -> None:
    """Run and print the history benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=500, help="jobs per put/ack block")
    parser.add_argument("--worker-jobs", type=int, default=3_000, help="jobs per worker block")
    parser.add_argument("--memory-jobs", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7, help="blocks of each, alternating")
    args = parser.parse_args()
    with private_redis() as server:
        results: dict[str, Any] = throughput(server.url, args.jobs, args.worker_jobs, args.repeats)
    with private_redis() as server:
        results["memory"] = memory(server.url, args.memory_jobs)
    with private_redis() as server:
        results["lookup"] = history_cost(server.url, 1000, args.memory_jobs * 5)
    emit("history", {"jobs": args.jobs, "worker_jobs": args.worker_jobs,
                     "memory_jobs": args.memory_jobs, **results})  # fmt: skip


if __name__ == "__main__":
    main()
