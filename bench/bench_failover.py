"""Cluster benchmark: put/s and worker jobs/s on a 3-master cluster vs one node, and failover.

Run alone: ``.venv/bin/python -m bench.bench_failover [--quick]``. It starts one redis-server
and a 3-master/3-replica Redis Cluster (``tests/cluster.py``) from the same binary, on this
machine, in the same run, and prints one JSON object per line:

- ``cluster_throughput``: puts/s (async client, 32 concurrent producers over 12 topics), put_many
  jobs/s (batches of 500), and worker jobs/s (one Worker draining the 12 topics), on the
  single node and on the cluster, with the cluster/single ratios.
- ``failover``: kill -9 of the master that owns a busy topic while puts (default and durable)
  and reserve+ack run: seconds until each resumes, and the jobs lost in each mode.

On a 2-core machine the cluster cannot scale out: its 6 servers and the client share the
same 2 cores, and a Python client tops out before one Redis does. The ratio shows what the
cluster costs (routing, more connections), not what more machines would bring.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import emit, private_redis
from redisched import AsyncClient, BackendError, Job, NotReplicated, Worker
from redisched.embedded import find_binary
from redisched.keys import TopicKeys
from tests.cluster import LocalCluster

TOPICS = [f"bench-{i}" for i in range(12)]
BODY = b"x" * 100


async def put_rate(client: AsyncClient, jobs: int, producers: int = 32) -> float:
    """Puts per second of ``producers`` tasks putting ``jobs`` jobs over the topics."""
    per = jobs // producers

    async def produce(p: int) -> None:
        for i in range(per):
            await client.put(TOPICS[(p + i) % len(TOPICS)], f"s{p}-{i}", BODY)

    started = time.perf_counter()
    await asyncio.gather(*(produce(p) for p in range(producers)))
    return per * producers / (time.perf_counter() - started)


async def put_many_rate(client: AsyncClient, jobs: int) -> float:
    """Jobs per second of put_many batches of 500, one batch per topic at a time, concurrently."""
    per_topic = jobs // len(TOPICS)

    async def fill(topic: str) -> None:
        for start in range(0, per_topic, 500):
            batch = [(f"m-{i}", BODY) for i in range(start, min(per_topic, start + 500))]
            await client.put_many(topic, batch)

    started = time.perf_counter()
    await asyncio.gather(*(fill(t) for t in TOPICS))
    return per_topic * len(TOPICS) / (time.perf_counter() - started)


async def worker_rate(client: AsyncClient, expected: int) -> float:
    """Jobs per second of one Worker (no-op handler) draining every topic's ready jobs."""
    done = 0

    async def handler(job: Job) -> None:
        nonlocal done
        done += 1
        if done == expected:
            worker.stop()

    worker = Worker(client, dict.fromkeys(TOPICS, handler), concurrency=100, handle_signals=False)
    started = time.perf_counter()
    await asyncio.wait_for(worker.run(), 300)
    return expected / (time.perf_counter() - started)


async def throughput(url: str, cluster: bool, jobs: int) -> dict[str, float]:
    """The three rates against one server or the cluster."""
    async with AsyncClient.from_url(url, cluster=cluster) as client:
        puts = await put_rate(client, jobs)
        many = await put_many_rate(client, jobs)
        total = sum([(await client.stats(t)).ready for t in TOPICS])
        jobs_per_s = await worker_rate(client, total)
    return {
        "put_per_s": round(puts),
        "put_many_per_s": round(many),
        "worker_per_s": round(jobs_per_s),
    }


async def failover(cluster: LocalCluster, seconds_after: float) -> dict[str, Any]:
    """Kill the busy topic's master under load; recovery seconds and losses per mode."""
    topic = "bench-failover"
    key = TopicKeys("redisched", topic).name("jobs")
    ok: dict[str, list[float]] = {"default": [], "durable": [], "reserve": []}
    acknowledged: dict[str, set[str]] = {"default": set(), "durable": set()}
    delivered: set[str] = set()
    stop = asyncio.Event()
    async with AsyncClient.from_url(cluster.url, cluster=True, durable_timeout=0.5) as client:

        async def produce(mode: str) -> None:
            n = 0
            while not stop.is_set():
                try:
                    await client.put(topic, f"{mode}-{n}", BODY, durable=mode == "durable")
                except (NotReplicated, BackendError):
                    await asyncio.sleep(0.02)
                    continue
                acknowledged[mode].add(f"{mode}-{n}")
                ok[mode].append(time.monotonic())
                n += 1

        async def consume() -> None:
            while not stop.is_set() or (await client.stats(topic)).ready:
                try:
                    jobs = await client.reserve_many(topic, 50, ttr=1)
                    await client.ack_many(topic, jobs)
                except BackendError:
                    await asyncio.sleep(0.02)
                    continue
                delivered.update(j.id for j in jobs)
                ok["reserve"].append(time.monotonic())
                if not jobs:
                    await client.requeue(topic)
                    await asyncio.sleep(0.01)

        tasks = [
            asyncio.create_task(c) for c in (produce("default"), produce("durable"), consume())
        ]
        await asyncio.sleep(1.0)
        old = cluster.master_of(key)
        killed = time.monotonic()
        victim = cluster.kill_master_of(key)
        await asyncio.to_thread(cluster.wait_new_master, key, old)
        promoted = time.monotonic() - killed
        await asyncio.to_thread(cluster.restart, victim)
        await asyncio.sleep(seconds_after)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)

    def down(times: list[float]) -> float:
        gaps = [b - max(a, killed) for a, b in itertools.pairwise(times) if b > killed]
        return round(max(gaps, default=float("inf")), 2)

    return {
        "replica_promoted_s": round(promoted, 2),
        "recovery_s": {kind: down(times) for kind, times in ok.items()},
        "acknowledged": {mode: len(ids) for mode, ids in acknowledged.items()},
        "lost": {mode: len(ids - delivered) for mode, ids in acknowledged.items()},
    }


def main(argv: list[str] | None = None) -> None:
    """Measure and print the JSON records."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer jobs (for make bench)")
    parser.add_argument("--jobs", type=int, help="jobs per throughput measurement")
    args = parser.parse_args(argv)
    jobs = args.jobs or (6_000 if args.quick else 30_000)
    binary = find_binary()

    async def measure(cluster: LocalCluster, single_url: str) -> None:
        single = await throughput(single_url, False, jobs)
        clustered = await throughput(cluster.url, True, jobs)
        ratios = {k: round(clustered[k] / single[k], 2) for k in single}
        emit("cluster_throughput", {
            "jobs": jobs, "single": single, "cluster": clustered, "cluster_over_single": ratios,
        })  # fmt: skip
        emit("failover", await failover(cluster, 2.0))

    with (
        private_redis(binary) as server,
        tempfile.TemporaryDirectory(prefix="redisched-cluster-") as folder,
        LocalCluster(binary, Path(folder) / "cluster") as cluster,
    ):
        asyncio.run(measure(cluster, server.url))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a benchmark reports its failure as JSON, then fails
        json.dump({"benchmark": "failover", "error": str(exc)}, sys.stdout)
        raise
