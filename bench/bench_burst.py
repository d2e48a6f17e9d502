"""A burst: N jobs falling due within one second (a campaign at 09:00), drained by one Worker.

Three goals of issue 17, each measured here against the same Worker's steady rate in the same
run:

- the burst drains at >= 0.9x the Worker's steady jobs/s (N ready jobs, the same Worker);
- the first job starts <= 5 ms after its run_at (handler start minus ``job.run_at``);
- no Redis command takes over 5 ms while the burst is promoted (``SLOWLOG`` entries over
  5,000 µs and ``LATENCY LATEST`` with ``latency-monitor-threshold 5``).

The jobs are put beforehand with ``put_many`` (5,000 per call), their run_at spread evenly over
one second that starts a few seconds after the last put; the Worker is already waiting when
the second begins. Drain rate: N / (last ack - first run_at).

Run: ``python -m bench.bench_burst [--jobs N]`` (``make bench`` uses 100,000; the issue's
1,000,000 with ``--jobs 1000000``, ~300 MB of Redis memory); prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import redis

from bench.bench_worker import drain, fill, run_loop
from bench.common import emit, private_redis
from redisched import AsyncClient, Client, Job, Worker
from redisched.ops import DEFAULT_PROMOTE_LIMIT

SLOW_US = 5000
BATCH = 5000


def fill_burst(url: str, topic: str, count: int, lead: float) -> float:
    """Put ``count`` jobs due over one second starting ``lead`` s after the puts; that start."""
    body = b"x" * 100
    batches = max(1, (count + BATCH - 1) // BATCH)
    # time one batch (in another topic), so that the second starts after the last put
    started = time.time()
    fill(url, "probe", "p", min(count, BATCH), delay=86_400)
    begin = time.time() + (time.time() - started) * batches * 1.5 + lead
    with Client.from_url(url) as client:
        for index in range(batches):
            ids = range(index * BATCH, min(count, (index + 1) * BATCH))
            run_at = begin + index / batches
            client.put_many(topic, [(f"b-{i}", body) for i in ids], run_at=run_at)
    if time.time() > begin:
        raise SystemExit("bench_burst: the puts ran into the burst second; raise --lead")
    return begin


async def burst(
    url: str, topic: str, count: int, begin: float, concurrency: int, promote_limit: int
) -> dict[str, Any]:
    """Run one Worker through the burst; lateness of the first job and the drain time."""
    done = 0
    first_late_ms: float | None = None
    last_ack = 0.0

    async def handler(job: Job) -> None:
        nonlocal done, first_late_ms, last_ack
        if first_late_ms is None:
            first_late_ms = time.time() * 1000 - job.run_at.timestamp() * 1000
        done += 1
        if done == count:
            last_ack = time.time()
            worker.stop()

    async with AsyncClient.from_url(url, promote_limit=promote_limit) as client:
        worker = Worker(client, {topic: handler}, concurrency=concurrency, handle_signals=False)
        task = asyncio.create_task(worker.run())
        await worker.wait_started()
        await asyncio.wait_for(task, max(60.0, begin - time.time() + count / 1000))
        stats = await client.stats(topic)
    if stats.total_acked != count:
        raise SystemExit(f"bench_burst: {topic} not fully acked: {stats}")
    return {"first_job_late_ms": first_late_ms, "drain_s": last_ack - begin}


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def slow_commands(conn: redis.Redis) -> dict[str, Any]:
    """The slowest command SLOWLOG kept, how many went over 5 ms, and LATENCY LATEST."""
    entries = conn.slowlog_get(128)
    over = [e for e in entries if e["duration"] > SLOW_US]
    slowest = max(entries, key=lambda e: e["duration"], default=None)
    latest = conn.execute_command("LATENCY", "LATEST")
    return {
        "over_5ms": len(over),
        "slowest_us": slowest["duration"] if slowest else 0,
        "slowest_command": (_text(slowest["command"])[:60] if slowest else ""),
        "latency_latest_max_ms": max((int(row[2]) for row in latest), default=0),
    }


def main() -> None:
    """Measure the steady rate, then the burst; print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--promote-limit", type=int, default=DEFAULT_PROMOTE_LIMIT)
    parser.add_argument("--lead", type=float, default=2.0, help="seconds between puts and burst")
    args = parser.parse_args()
    n = args.jobs
    with private_redis() as server:
        url = server.url
        conn = redis.Redis.from_url(url)
        fill(url, "steady", "s", n)
        steady_s = run_loop(drain(url, "steady", n, args.concurrency))
        begin = fill_burst(url, "burst", n, args.lead)
        conn.config_set("slowlog-log-slower-than", SLOW_US // 5)  # keep the near misses too
        conn.config_set("latency-monitor-threshold", SLOW_US // 1000)
        conn.slowlog_reset()
        conn.execute_command("LATENCY", "RESET")
        result = run_loop(burst(url, "burst", n, begin, args.concurrency, args.promote_limit))
        slow = slow_commands(conn)
        conn.close()
    steady = n / steady_s
    drained = n / result["drain_s"]
    emit(
        "burst",
        {
            "jobs": n,
            "concurrency": args.concurrency,
            "promote_limit": args.promote_limit,
            "steady_jobs_per_s": round(steady),
            "burst_jobs_per_s": round(drained),
            "burst_ratio": round(drained / steady, 3),
            "first_job_late_ms": round(result["first_job_late_ms"], 2),
            "slowlog": slow,
        },
    )


if __name__ == "__main__":
    main()
