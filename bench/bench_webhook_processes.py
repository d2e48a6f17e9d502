"""Webhook deliveries/s of two ``redisched serve`` processes on one Redis against one.

The push dispatcher runs once per ``serve`` process (``--workers`` adds HTTP processes only),
and one dispatcher is bound by its own core (``bench_webhook``). A user with cores to spare
runs more ``serve`` processes against the same Redis (``--redis-url``, each on its own port):
their dispatchers share every topic's jobs through Redis leases, and a topic's limits hold
across them. This measures what a second process adds, as ``bench_http_workers`` does for
HTTP.

Each round starts the processes (``redisched serve --allow-private-webhooks``, a private
redis-server), puts ``--jobs`` due jobs into a topic of its own whose webhook is the
receiver of ``bench_webhook`` (an aiohttp process answering 200), with the topic paused;
after :data:`PICK_UP` seconds for the dispatchers to read it, resuming it starts the clock,
which stops when the topic's acked count reaches ``--jobs`` (read every 10 ms); each
process's share, read from its ``/metrics``, shows that every dispatcher took part. One and
two alternate, round by round, so that both see the same machine load. On 2 cores shared with
the receiver and redis-server, expect much less than 2.

Run: ``.venv/bin/python -m bench.bench_webhook_processes [--quick] [--jobs N] [--rounds N]``;
prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.bench_http import server
from bench.bench_webhook import BODY, SECRET, _serve_receiver, _wait_ready
from bench.common import emit, private_redis
from redisched import Client
from redisched.embedded import free_port

PICK_UP = 1.5
"""Seconds the dispatchers get to read the new topic before it is resumed (they read topics
at start; this is the time to load the scripts and lease nothing from the paused topic)."""


@contextlib.contextmanager
def serving(redis_url: str, processes: int) -> Iterator[list[str]]:
    """``processes`` ``redisched serve`` processes on ``redis_url``; their base URLs."""
    binary = str(Path(sys.executable).parent / "redisched")
    with contextlib.ExitStack() as stack:
        urls = []
        for _ in range(processes):
            port = free_port()
            command = [binary, "serve", "--redis-url", redis_url, "--port", str(port),
                       "--allow-private-webhooks"]  # fmt: skip
            urls.append(stack.enter_context(server(command, port)))
        yield urls


def acked_by(url: str, topic: str) -> int:
    """The deliveries of ``topic`` the serve process at ``url`` acked, from its ``/metrics``."""
    series = f'redisched_webhook_deliveries_total{{outcome="acked",topic="{topic}"}} '
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(series):
            return round(float(line.removeprefix(series)))
    return 0


def round_rate(
    redis_url: str, hook: str, topic: str, jobs: int, processes: int
) -> tuple[float, list[int]]:
    """Deliveries/s of ``processes`` serve processes emptying ``topic`` of ``jobs`` due jobs,
    and how many each process acked."""
    with Client.from_url(redis_url) as client:
        client.configure(topic, webhook={"url": hook, "secrets": [SECRET], "timeout": 10})
        client.pause(topic)
        for start in range(0, jobs, 1000):
            batch = [(f"j{i}", BODY) for i in range(start, min(jobs, start + 1000))]
            client.put_many(topic, batch)
        with serving(redis_url, processes) as urls:
            time.sleep(PICK_UP)
            started = time.perf_counter()
            client.resume(topic)
            deadline = started + max(60.0, jobs / 100)
            while client.stats(topic).total_acked < jobs:
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{topic}: not every job was delivered in time")
                time.sleep(0.01)
            seconds = time.perf_counter() - started
            time.sleep(0.2)  # the last acks' metrics are counted once their round trip ends
            shares = [acked_by(url, topic) for url in urls]
        stats = client.stats(topic)
        if stats.dead or stats.total_acked != jobs or sum(shares) != jobs:
            raise RuntimeError(f"{topic}: {stats.total_acked} acked ({shares}), {stats.dead} dead")
        return jobs / seconds, shares


def main() -> None:
    """Measure, then print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 rounds of 10,000 jobs")
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each")
    parser.add_argument("--processes", type=int, default=2, help="serve processes of the second")
    options = parser.parse_args()
    jobs, rounds = (10_000, 2) if options.quick else (options.jobs, options.rounds)
    load_before = os.getloadavg()
    port = free_port()
    receiver = multiprocessing.get_context("spawn").Process(
        target=_serve_receiver, args=(port,), daemon=True
    )
    receiver.start()
    hook = f"http://127.0.0.1:{port}/hook"
    runs: dict[int, list[float]] = {1: [], options.processes: []}
    shares: list[list[int]] = []  # per round of several processes: the jobs each acked
    try:
        asyncio.run(_wait_ready(f"http://127.0.0.1:{port}/count"))
        with private_redis() as redis_server:
            for index in range(rounds):
                order = (1, options.processes) if index % 2 == 0 else (options.processes, 1)
                for processes in order:
                    topic = f"hooks-{index}-{processes}"
                    rate, acked = round_rate(redis_server.url, hook, topic, jobs, processes)
                    runs[processes].append(rate)
                    if processes > 1:
                        shares.append(acked)
    finally:
        receiver.terminate()
        receiver.join(5)
    one, many = statistics.median(runs[1]), statistics.median(runs[options.processes])
    emit(
        "webhook_processes",
        {
            "processes": options.processes,
            "jobs_per_round": jobs,
            "rounds": rounds,
            "deliveries_per_s_1_process": round(one),
            f"deliveries_per_s_{options.processes}_processes": round(many),
            "ratio": round(many / one, 3),
            "runs": {str(k): [round(x) for x in v] for k, v in runs.items()},
            "acked_per_process": shares,
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
    )


if __name__ == "__main__":
    main()
