"""Worker benchmark: end-to-end jobs/s of one worker process, and dispatch lag.

Run alone: ``.venv/bin/python -m bench.bench_worker`` (``--help`` for the knobs). It starts its
own redis-server (no persistence, default ``hz``), and prints one JSON object:

- ``throughput``: N jobs with 100-byte bodies put beforehand, one Worker in this process with
  a no-op async handler; jobs/s from ``run()`` until the last ack landed, as a ratio to a
  bare redis-py loop of ``EVALSHA`` on a trivial script against the same server.
- ``lag_future``: jobs due at random instants over a few seconds; handler start minus run_at.
- ``lag_due_now``: jobs put due now at random intervals by another process; handler start
  minus run_at (the server's ms-floored put time, so up to 1 ms too high) and minus the
  moment the put was sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import redis

from redisched import AsyncClient, Client, Job, Worker
from redisched.embedded import EmbeddedRedis


def run_loop(main: Coroutine[Any, Any, Any]) -> Any:
    """Run on uvloop when it is installed, as the CLI does."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def loop_name() -> str:
    """Which event loop ``run_loop`` uses."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def evalsha_rate(url: str, calls: int) -> float:
    """Calls per second of a bare redis-py loop of EVALSHA on ``return 1``."""
    conn = redis.Redis.from_url(url)
    sha = conn.script_load("return 1")
    for _ in range(1000):  # warm up
        conn.evalsha(sha, 0)
    started = time.perf_counter()
    for _ in range(calls):
        conn.evalsha(sha, 0)
    elapsed = time.perf_counter() - started
    conn.close()
    return calls / elapsed


def fill(url: str, topic: str, prefix: str, count: int, **options: Any) -> None:
    """Put ``count`` jobs with 100-byte bodies (ids ``prefix-i``), 5,000 per round trip."""
    body = b"x" * 100
    with Client.from_url(url) as client:
        for start in range(0, count, 5000):
            ids = range(start, min(count, start + 5000))
            client.put_many(topic, [(f"{prefix}-{i}", body) for i in ids], **options)


async def drain(url: str, topic: str, count: int, concurrency: int) -> float:
    """Seconds for one Worker to run and ack ``count`` ready jobs with a no-op handler."""
    done = 0

    async def handler(job: Job) -> None:
        nonlocal done
        done += 1
        if done == count:
            worker.stop()

    async with AsyncClient.from_url(url) as client:
        acked_before = (await client.stats(topic)).total_acked
        worker = Worker(client, {topic: handler}, concurrency=concurrency, handle_signals=False)
        started = time.perf_counter()
        await worker.run()
        elapsed = time.perf_counter() - started
        stats = await client.stats(topic)
    if stats.total_acked - acked_before != count or stats.ready or stats.reserved:
        raise SystemExit(f"bench_worker: {topic} not fully acked: {stats}")
    return elapsed


async def lag_future(url: str, topic: str, count: int, spread: float) -> list[float]:
    """Handler start minus run_at (ms) for jobs due at random instants over ``spread`` s."""
    lags: list[float] = []

    async def handler(job: Job) -> None:
        lags.append(time.time() * 1000 - job.run_at.timestamp() * 1000)
        if len(lags) == count:
            worker.stop()

    async with AsyncClient.from_url(url) as client:
        worker = Worker(client, {topic: handler}, concurrency=50, handle_signals=False)
        task = asyncio.create_task(worker.run())
        await worker.wait_started()
        begin = time.time() + 1.0
        for i in range(count):
            await client.put(topic, str(i), b"x" * 100, run_at=begin + random.uniform(0, spread))
        await asyncio.wait_for(task, spread + 30)
    return lags


PRODUCER = """
import random, sys, time
from redisched import Client
url, topic, count, spread = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
with Client.from_url(url) as client:
    for i in range(count):
        time.sleep(random.uniform(0, 2 * spread / count))
        client.put(topic, str(i), f"{time.time() * 1000:.3f}".ljust(100).encode())
"""


async def lag_due_now(url: str, topic: str, count: int, spread: float) -> dict[str, list[float]]:
    """Lags (ms) for jobs put due now at random intervals by another process.

    Each body carries the producer's clock when it sent the put.
    """
    vs_run_at: list[float] = []
    vs_put: list[float] = []

    async def handler(job: Job) -> None:
        now = time.time() * 1000
        vs_run_at.append(now - job.run_at.timestamp() * 1000)
        vs_put.append(now - float(job.body))
        if len(vs_put) == count:
            worker.stop()

    async with AsyncClient.from_url(url) as client:
        worker = Worker(client, {topic: handler}, concurrency=50, handle_signals=False)
        task = asyncio.create_task(worker.run())
        await worker.wait_started()
        producer = await asyncio.create_subprocess_exec(
            sys.executable, "-c", PRODUCER, url, topic, str(count), str(spread)
        )
        await asyncio.wait_for(task, spread * 3 + 30)
        await producer.wait()
    return {"vs_run_at": vs_run_at, "vs_put": vs_put}


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p99 and max, rounded to µs."""
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {"p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": round(ordered[-1], 3)}


def measure(args: argparse.Namespace, server: EmbeddedRedis) -> dict[str, Any]:
    """Every figure of this benchmark against one server."""
    url = server.url
    results: dict[str, Any] = {}
    baseline = statistics.median(evalsha_rate(url, args.jobs) for _ in range(3))
    topic = "bench-throughput"
    if args.topic_concurrency:
        with Client.from_url(url) as client:
            for name in (topic, "bench-lag-future", "bench-lag-now"):
                client.configure(name, concurrency=args.topic_concurrency)
    if args.scheduled:  # future jobs in the same topic, to show the cost does not grow
        fill(url, topic, "future", args.scheduled, delay=86_400)
    rates = []
    for run in range(args.repeat):
        fill(url, topic, f"run{run}", args.jobs)
        rates.append(args.jobs / run_loop(drain(url, topic, args.jobs, args.concurrency)))
    results["throughput"] = {
        "jobs": args.jobs,
        "body_bytes": 100,
        "concurrency": args.concurrency,
        "scheduled_future_jobs": args.scheduled,
        "jobs_per_s": round(statistics.median(rates)),
        "runs_jobs_per_s": [round(r) for r in rates],
        "evalsha_loop_per_s": round(baseline),
        "ratio_to_evalsha_loop": round(statistics.median(rates) / baseline, 2),
    }
    if args.lag_jobs:
        future = run_loop(lag_future(url, "bench-lag-future", args.lag_jobs, args.spread))
        results["lag_future"] = {"jobs": args.lag_jobs, "spread_s": args.spread,
                                 **percentiles(future)}  # fmt: skip
        now = run_loop(lag_due_now(url, "bench-lag-now", args.lag_jobs, args.spread))
        results["lag_due_now"] = {
            "jobs": args.lag_jobs,
            "vs_run_at": percentiles(now["vs_run_at"]),
            "vs_put_sent": percentiles(now["vs_put"]),
        }
    return results


def options(prog: str, description: str | None) -> argparse.ArgumentParser:
    """The options of a worker benchmark: throughput runs and lag jobs (bench_glue shares them)."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="throughput runs (median)")
    parser.add_argument("--lag-jobs", type=int, default=1000, help="0 skips the lag figures")
    parser.add_argument("--spread", type=float, default=5.0, help="seconds the lag jobs span")
    parser.add_argument("--quick", action="store_true", help="5k jobs, 200 lag jobs over 1 s")
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """The parsed options, ``--quick`` applied."""
    args = parser.parse_args(argv)
    if args.quick:
        args.jobs, args.lag_jobs, args.spread, args.repeat = 5000, 200, 1.0, 1
    return args


def main(argv: list[str] | None = None, emit: Callable[[str], object] = print) -> dict[str, Any]:
    """Parse the options, run the benchmark on a private server, print JSON."""
    parser = options("python -m bench.bench_worker", __doc__)
    parser.add_argument("--scheduled", type=int, default=0,
                        help="future jobs in the topic during the throughput runs")  # fmt: skip
    parser.add_argument("--topic-concurrency", type=int, default=None,
                        help="a concurrency limit on every topic (limit.lua's grant)")  # fmt: skip
    args = parse(parser, argv)
    with (
        tempfile.TemporaryDirectory(prefix="redisched-bench-") as folder,
        EmbeddedRedis(Path(folder), persistent=False) as server,
    ):
        results = measure(args, server)
        version = redis.Redis.from_url(server.url).info("server")["redis_version"]
    report = {
        "benchmark": "worker",
        "machine": {
            "python": platform.python_version(),
            "cpus": _cpus(),
            "loop": loop_name(),
            "redis": version,
        },
        **results,
    }
    emit(json.dumps(report))
    return report


def _cpus() -> int | None:
    import os

    return os.cpu_count()


if __name__ == "__main__":
    main(sys.argv[1:])
