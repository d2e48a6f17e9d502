"""Wake-ups and the Worker on a real Redis Cluster.

The worker tests of ``tests/test_worker.py`` that need nothing but a client and a topic run
here again with a cluster-backed client. The wake-up hub subscribes on one node and hears
the scripts' PUBLISH from every master (cluster PUBLISH is broadcast).
"""

from __future__ import annotations

import asyncio
import inspect
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import redisched
from redisched import AsyncClient, Job, Worker
from redisched.wakeup import Wakeups
from tests import test_worker
from tests.cluster import LocalCluster

_ONLY_CLIENT_AND_TOPIC = {"client", "topic"}
for _name, _test in vars(test_worker).items():
    if (
        _name.startswith("test_")
        and inspect.iscoroutinefunction(_test)
        and set(inspect.signature(_test).parameters) == _ONLY_CLIENT_AND_TOPIC
    ):
        globals()[_name] = _test


@pytest.fixture
async def client(redis_cluster: LocalCluster) -> AsyncIterator[AsyncClient]:
    """An asyncio client on the session's cluster."""
    async with AsyncClient.from_url(redis_cluster.url, cluster=True) as c:
        yield c


def test_the_worker_suite_runs_here() -> None:
    names = [n for n in globals() if n.startswith("test_") and n in vars(test_worker)]
    assert len(names) >= 10, names


async def test_one_subscription_hears_topics_on_every_master(
    redis_cluster: LocalCluster, client: AsyncClient
) -> None:
    topics = redis_cluster.topics_on_each_master("wake", 4)
    assert len(topics) == 12
    hub = Wakeups(client.redis)
    try:
        for t in topics:
            await hub.watch(t)
        for t in topics:
            since = hub.generation(t)
            started = time.perf_counter()
            await client.put(t, "j", b"")
            assert await hub.wait(t, since, timeout=5) is True, t
            assert time.perf_counter() - started < 1.0
    finally:
        await hub.close()


async def test_a_worker_on_the_cluster_runs_jobs_of_topics_on_every_master(
    client: AsyncClient,
) -> None:
    topics = [f"work-{i}-{uuid.uuid4().hex[:6]}" for i in range(6)]
    done: dict[str, set[str]] = {t: set() for t in topics}
    finished = asyncio.Event()

    async def handle(job: Job) -> None:
        done[job.topic].add(job.id)
        if all(len(ids) == 50 for ids in done.values()):
            finished.set()

    worker = Worker(client, {t: handle for t in topics}, handle_signals=False)
    task = asyncio.create_task(worker.run())
    await worker.wait_started()
    try:
        for t in topics:  # put after the worker waits: only wake-ups can start the jobs
            await client.put_many(t, [(str(i), b"x") for i in range(50)])
        await asyncio.wait_for(finished.wait(), 20)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)
    for t in topics:
        stats = await client.stats(t)
        assert (stats.total_acked, stats.ready, stats.reserved) == (50, 0, 0)


def test_the_worker_command_with_redis_cluster(redis_cluster: LocalCluster, tmp_path: Path) -> None:
    topics = [f"cli-{i}-{uuid.uuid4().hex[:6]}" for i in range(3)]
    command = [
        str(Path(sys.executable).with_name("redisched")), "worker", "builtins:repr",
        *(arg for t in topics for arg in ("-t", t)), "--redis-url", redis_cluster.url,
        "--redis-cluster",
    ]  # fmt: skip
    with (tmp_path / "worker.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        with redisched.Client.from_url(redis_cluster.url, cluster=True) as client:
            for t in topics:
                client.put_many(t, [(str(i), b"x") for i in range(100)])
            deadline = time.monotonic() + 20
            while sum(client.stats(t).total_acked for t in topics) < 300:
                assert process.poll() is None, (tmp_path / "worker.log").read_text()
                assert time.monotonic() < deadline, "the worker did not ack every job"
                time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, (tmp_path / "worker.log").read_text()
