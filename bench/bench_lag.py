"""Dispatch lag as a user measures it: the Worker alone in its own process (issue 17).

A user's measurement: ``time.time()`` at the handler's start minus ``job.run_at``, 300 jobs
spread over 3 s, the Worker in a process of its own (``asyncio.run``, or uvloop), the jobs put
by another process. ``bench_worker``'s ``lag_future`` measures the same difference but puts
the jobs from the Worker's own process and event loop, on uvloop. This module runs the user's
setup on both loops and also reports each lag against the float run_at the producer asked
for (carried in the body), which ``job.run_at`` rounds to the millisecond.

Run: ``python -m bench.bench_lag [--jobs N] [--spread S]``; prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from typing import Any

from bench.bench_worker import percentiles
from bench.common import emit, private_redis
from redisched import Client

WORKER = """
import asyncio, json, sys, time
from redisched import AsyncClient, Worker
url, topic, count, loop = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
lags, vs_asked = [], []

async def main():
    async def handler(job):
        now = time.time() * 1000
        lags.append(now - job.run_at.timestamp() * 1000)
        vs_asked.append(now - float(job.body))
        if len(lags) == count:
            worker.stop()

    async with AsyncClient.from_url(url) as client:
        worker = Worker(client, {topic: handler}, concurrency=50, handle_signals=False)
        task = asyncio.create_task(worker.run())
        await worker.wait_started()
        print("ready", flush=True)
        await task

if loop == "uvloop":
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
print(json.dumps({"lags": lags, "vs_asked": vs_asked}), flush=True)
"""


def one_loop(url: str, topic: str, count: int, spread: float, loop: str) -> dict[str, Any]:
    """Start a Worker process on ``loop``, put the jobs from here, read its lags back."""
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, url, topic, str(count), loop],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert worker.stdout is not None
    if worker.stdout.readline().strip() != "ready":
        raise SystemExit(f"bench_lag: the {loop} worker did not start")
    begin = time.time() + 1.0
    with Client.from_url(url) as client:
        for i in range(count):
            run_at = begin + random.uniform(0, spread)
            client.put(topic, str(i), f"{run_at * 1000:.3f}".encode(), run_at=run_at)
    out, _ = worker.communicate(timeout=spread + 60)
    found = json.loads(out.strip().splitlines()[-1])
    return {
        "vs_run_at": percentiles(found["lags"]),
        "vs_asked_run_at": percentiles(found["vs_asked"]),
    }


def main() -> None:
    """Measure on asyncio and uvloop; print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--spread", type=float, default=3.0)
    args = parser.parse_args()
    results: dict[str, Any] = {"jobs": args.jobs, "spread_s": args.spread}
    with private_redis() as server:
        for loop in ("asyncio", "uvloop"):
            results[loop] = one_loop(server.url, f"lag-{loop}", args.jobs, args.spread, loop)
    emit("lag", results)


if __name__ == "__main__":
    main()
