"""The Node.js and Go workers (clients/) next to the Python Worker, in the same run.

Run alone: ``.venv/bin/python -m bench.bench_glue`` (``--help`` for the knobs; needs ``node``
with ``clients/node/node_modules`` and ``go``). It starts its own redis-server (no persistence)
and prints one JSON object with, per language (``python``, ``node``, ``go``):

- ``jobs_per_s``: N jobs with 100-byte bodies put into a paused topic; the worker (a no-op
  handler, one process) starts and subscribes, the topic is resumed, and the clock runs until
  the last ack landed (polled every 5 ms). ``ratio_to_python`` compares with the Python Worker
  measured the same way in this run. The Python Worker runs in this process, the others as
  subprocesses.
- ``lag``: jobs due at random instants over a few seconds, all put before the first is due;
  handler start minus run_at (p50, p99, max in ms), the handler taking the time first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import redis

from bench.bench_worker import fill, options, parse, percentiles, run_loop
from redisched import AsyncClient, Client, Job, Worker
from redisched.commands.scripts import lua_dir
from redisched.embedded import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "clients" / "node"
GO_DIR = ROOT / "clients" / "go"
LANGUAGES = ("python", "node", "go")


def glue_env(url: str, topic: str) -> dict[str, str]:
    return {
        **os.environ, "REDISCHED_REDIS_URL": url, "REDISCHED_LUA_DIR": str(lua_dir()),
        "GLUE_TOPICS": topic, "GOPROXY": "off",
    }  # fmt: skip


def build_go(folder: Path) -> Path:
    """The Go test worker (recording or no-op handlers)."""
    binary = folder / "testworker"
    subprocess.run(
        ["go", "build", "-o", str(binary), "./internal/testworker"],
        cwd=GO_DIR, env={**os.environ, "GOPROXY": "off"}, check=True, timeout=300,
    )  # fmt: skip
    return binary


def command(language: str, topic: str, concurrency: int, go_binary: Path, noop: bool) -> list[str]:
    if language == "node":
        module = NODE_DIR / "testing" / ("noop.js" if noop else "recording.js")
        return ["node", str(NODE_DIR / "bin" / "redisched-node"), "worker", str(module),
                f"--concurrency={concurrency}"]  # fmt: skip
    flags = ["-noop"] if noop else []
    return [str(go_binary), f"-concurrency={concurrency}", *flags, topic]


class Process:
    """A glue worker subprocess, ready once it printed its ready line."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv, cwd=NODE_DIR, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if b'"ready"' not in line:
            self.proc.kill()
            raise SystemExit(f"bench_glue: {argv[0]} did not start: {line!r}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def wait_acked(client: Client, topic: str, target: int, timeout: float) -> float:
    """Poll until the topic's total_acked reaches ``target``; the monotonic time it did."""
    deadline = time.monotonic() + timeout
    while client.stats(topic).total_acked < target:
        if time.monotonic() > deadline:
            raise SystemExit(f"bench_glue: {topic} did not reach {target} acks")
        time.sleep(0.005)
    return time.monotonic()


def python_worker(url: str, topic: str, concurrency: int, handler: Any) -> Callable[[], None]:
    """Start the Python Worker on a thread of its own; returns once serving; a stop function."""
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        async with AsyncClient.from_url(url) as client:
            worker = Worker(client, {topic: handler}, concurrency=concurrency,
                            handle_signals=False)  # fmt: skip
            holder["worker"], holder["loop"] = worker, asyncio.get_running_loop()
            task = asyncio.create_task(worker.run())
            await worker.wait_started()
            started.set()
            await task

    thread = threading.Thread(target=run_loop, args=(main(),), daemon=True)
    thread.start()
    started.wait(30)

    def stop() -> None:
        holder["loop"].call_soon_threadsafe(holder["worker"].stop)
        thread.join(60)

    return stop


def start(language: str, url: str, topic: str, args: argparse.Namespace, go_binary: Path,
          noop: bool, handler: Any = None) -> Callable[[], None]:  # fmt: skip
    if language == "python":
        return python_worker(url, topic, args.concurrency, handler)
    proc = Process(command(language, topic, args.concurrency, go_binary, noop),
                   glue_env(url, topic))  # fmt: skip
    return proc.stop


async def _noop(job: Job) -> None:
    pass


def throughput(
    language: str, url: str, args: argparse.Namespace, go_binary: Path, run: int
) -> float:
    """Jobs per second of one worker draining ``args.jobs`` jobs released at once."""
    topic = f"bench-glue-{language}-{run}"
    with Client.from_url(url) as client:
        client.pause(topic)
        fill(url, topic, "j", args.jobs)
        stop = start(language, url, topic, args, go_binary, noop=True, handler=_noop)
        try:
            began = time.monotonic()
            client.resume(topic)
            ended = wait_acked(client, topic, args.jobs, 120)
        finally:
            stop()
    jobs: int = args.jobs
    return jobs / (ended - began)


def lag(language: str, url: str, args: argparse.Namespace, go_binary: Path) -> list[float]:
    """Handler start minus run_at (ms) for jobs due at random instants over ``args.spread`` s."""
    topic = f"bench-glue-lag-{language}"
    lags: list[float] = []

    async def handler(job: Job) -> None:
        lags.append(time.time() * 1000 - job.run_at.timestamp() * 1000)

    stop = start(language, url, topic, args, go_binary, noop=False, handler=handler)
    run_at: dict[str, float] = {}
    try:
        with Client.from_url(url) as client:
            # Every job is put before it is due (10 ms per put and read-back is ample on a
            # busy machine), so that the lag is the worker's, not the producer's.
            begin = time.time() + 1.0 + 0.01 * args.lag_jobs
            for i in range(args.lag_jobs):
                at = begin + random.uniform(0, args.spread)
                client.put(topic, str(i), b"x" * 100, run_at=at)
                job = client.get(topic, str(i))
                run_at[str(i)] = job.run_at.timestamp() * 1000 if job else at * 1000
            wait_acked(client, topic, args.lag_jobs, args.spread + 30)
    finally:
        stop()
    if language == "python":
        return lags
    conn = redis.Redis.from_url(url)
    for entry in cast(list[bytes], conn.lrange(f"gluetest:{topic}:runs", 0, -1)):
        job_id, _, at_ms = entry.decode().rsplit(" ", 2)
        lags.append(int(at_ms) - run_at[job_id])
    conn.close()
    return lags


def measure(args: argparse.Namespace, url: str, go_binary: Path) -> dict[str, Any]:
    """Every figure, the languages interleaved run by run so that load drifts hit all alike."""
    rates: dict[str, list[float]] = {lang: [] for lang in LANGUAGES}
    for run in range(args.repeat):
        for language in LANGUAGES:
            rates[language].append(throughput(language, url, args, go_binary, run))
    python = statistics.median(rates["python"])
    results: dict[str, Any] = {}
    for language in LANGUAGES:
        median = statistics.median(rates[language])
        results[language] = {
            "jobs": args.jobs, "body_bytes": 100, "concurrency": args.concurrency,
            "jobs_per_s": round(median), "runs_jobs_per_s": [round(r) for r in rates[language]],
            "ratio_to_python": round(median / python, 2),
        }  # fmt: skip
        if args.lag_jobs:
            results[language]["lag"] = {
                "jobs": args.lag_jobs, "spread_s": args.spread,
                **percentiles(lag(language, url, args, go_binary)),
            }  # fmt: skip
    return results


def main(argv: list[str] | None = None, emit: Callable[[str], object] = print) -> dict[str, Any]:
    """Parse the options, run the benchmark on a private server, print JSON."""
    args = parse(options("python -m bench.bench_glue", __doc__), argv)
    with (
        tempfile.TemporaryDirectory(prefix="redisched-bench-") as folder,
        EmbeddedRedis(Path(folder), persistent=False) as server,
    ):
        go_binary = build_go(Path(folder))
        results = measure(args, server.url, go_binary)
        version = redis.Redis.from_url(server.url).info("server")["redis_version"]
    report = {
        "benchmark": "glue",
        "machine": {"cpus": os.cpu_count(), "redis": version, "load_average": os.getloadavg(),
                    "node": _version(["node", "--version"]), "go": _version(["go", "version"])},
        **results,
    }  # fmt: skip
    emit(json.dumps(report))
    return report


def _version(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip()


if __name__ == "__main__":
    main(sys.argv[1:])
