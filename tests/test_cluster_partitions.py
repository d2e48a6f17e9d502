"""Partitioned topics on the cluster: by-id calls hit one node, reserves are fair."""

from __future__ import annotations

import asyncio
import collections
import time
import uuid
import zlib
from collections.abc import Iterator

import pytest

import redisched
from redisched import BackendError, InvalidArgument, Job, JobState, Lease, PutStatus, Worker
from redisched.keys import TopicKeys
from redisched.partitions import (
    AsyncPartitionedTopic,
    PartitionedTopic,
    Partitions,
    Sweep,
    partition_of,
)
from redisched.unreachable import Unreachable
from tests.cluster import LocalCluster
from tests.conftest import FakeClock


def test_routing_is_crc32_of_the_id() -> None:
    assert partition_of("need_some_help_email_42", 8) == zlib.crc32(b"need_some_help_email_42") % 8
    assert partition_of("é", 5) == zlib.crc32("é".encode()) % 5
    p = Partitions("hot", 4)
    assert p.names == ["hot~p0", "hot~p1", "hot~p2", "hot~p3"]
    assert [p.rotation()[0] for _ in range(5)] == ["hot~p0", "hot~p1", "hot~p2", "hot~p3", "hot~p0"]


@pytest.mark.parametrize(
    ("topic", "count", "argument"),
    [("hot", 0, "partitions"), ("hot", 1025, "partitions"), ("x" * 199, 10, "topic"),
     ("a{b}", 2, "topic"), ("hot", "4", "partitions")],
)  # fmt: skip
def test_bad_partition_settings_name_the_field(topic: str, count: object, argument: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        Partitions(topic, count)  # type: ignore[arg-type]
    assert err.value.argument == argument


def _evalsha_per_master(cluster: LocalCluster) -> dict[int, int]:
    calls = {}
    for port in cluster.masters():
        with cluster.connect(port) as conn:
            stats = conn.info("commandstats").get("cmdstat_evalsha", {})
            calls[port] = int(stats.get("calls", 0))
    return calls


@pytest.fixture
def hot(redis_cluster: LocalCluster) -> Iterator[PartitionedTopic]:
    """A 6-partition topic whose partitions land on all three masters."""
    with redisched.Client.from_url(redis_cluster.url, cluster=True) as client:
        for _ in range(50):
            topic = PartitionedTopic(client, f"hot-{uuid.uuid4().hex[:8]}", 6)
            names = [TopicKeys("redisched", n).name("jobs") for n in topic.names]
            if len({redis_cluster.master_of(n) for n in names}) == 3:
                yield topic.declare()
                return
        raise AssertionError("no topic name spread its 6 partitions over 3 masters")


def test_get_and_delete_by_id_are_one_call_to_one_node(
    redis_cluster: LocalCluster, hot: PartitionedTopic
) -> None:
    ids = [f"job-{i}" for i in range(300)]
    results = hot.put_many([(i, i.encode()) for i in ids])
    assert [r.status for r in results] == [PutStatus.CREATED] * 300
    per_partition = collections.Counter(hot.partitions.route(i) for i in ids)
    assert set(per_partition) == set(hot.names) and min(per_partition.values()) > 25
    for name in hot.names:  # load the get and delete scripts on every node first
        hot.client.get(name, "warm-up")
        hot.client.delete(name, "warm-up")
    for job_id in ("job-7", "job-123"):
        owner = redis_cluster.master_of(
            TopicKeys("redisched", hot.partitions.route(job_id)).name("jobs")
        )
        before = _evalsha_per_master(redis_cluster)
        job = hot.get(job_id)
        middle = _evalsha_per_master(redis_cluster)
        assert (
            job is not None
            and job.body == job_id.encode()
            and job.topic == hot.partitions.route(job_id)
        )
        assert hot.delete(job_id) is True
        after = _evalsha_per_master(redis_cluster)
        assert {p: middle[p] - before[p] for p in before} == {p: int(p == owner) for p in before}
        assert {p: after[p] - middle[p] for p in before} == {p: int(p == owner) for p in before}
    assert hot.get("job-7") is None and hot.stats().ready == 298


def test_reserve_draws_fairly_from_every_partition(hot: PartitionedTopic) -> None:
    hot.put_many([(f"j{i}", b"") for i in range(600)])
    served = collections.Counter()
    for _ in range(60):
        job = hot.reserve()
        assert job is not None
        served[job.topic] += 1
        hot.client.ack(job)
    assert served == {name: 10 for name in hot.names}
    batch = hot.reserve_many(12)
    assert len(batch) == 12 and len({j.topic for j in batch}) >= 1
    stats = hot.stats()
    assert (stats.reserved, stats.total_acked, stats.ready) == (12, 60, 600 - 72)


def test_lease_reports_the_earliest_next_due_of_all_partitions(hot: PartitionedTopic) -> None:
    hot.put("late", b"", delay=300)
    hot.put("soon", b"", delay=30)
    lease = hot.lease(5)
    assert lease.jobs == [] and lease.next_due_ms is not None
    soon = hot.get("soon")
    assert soon is not None and lease.next_due_ms == int(soon.run_at.timestamp() * 1000)


def _lease(jobs: int) -> Lease:
    return Lease([Job.__new__(Job) for _ in range(jobs)], 0, None, None)


def test_a_sweep_passes_over_the_partitions_that_fail_for_a_while(clock: FakeClock) -> None:
    layout, unreachable = Partitions("hot", 3), Unreachable(period=30, clock=clock)

    def sweep(want: int, failing: set[str], jobs: int = 1) -> tuple[list[str], int]:
        tried, swept = [], Sweep[Lease](layout, want, unreachable)
        for name in swept:
            tried.append(name)
            with swept.visiting(name):
                if name in failing:
                    raise BackendError(f"{name} is down")
                swept.took(name, _lease(jobs))
        return tried, sum(len(lease.jobs) for lease in swept.leases())

    # the first reserve of 4 visits the topic itself first, then hot~p0 (which fails), p1, p2
    assert sweep(4, {"hot~p0"}) == (["hot", "hot~p0", "hot~p1", "hot~p2"], 3)
    assert unreachable.skipped("hot~p0") and not unreachable.skipped("hot~p1")
    assert sweep(4, set()) == (["hot~p1", "hot~p2", "hot"], 3)  # p0 is passed over
    clock.advance(31)
    assert sweep(1, set()) == (["hot~p2"], 1)
    assert sweep(9, set(), jobs=0) == (["hot~p0", "hot~p1", "hot~p2", "hot"], 0)  # tried again
    with pytest.raises(BackendError, match="is down"):  # every partition failed
        sweep(2, {"hot", *layout.names})
    with pytest.raises(BackendError, match="no partition of 'hot' is reachable"):
        sweep(2, set())  # all passed over: none tried


def test_a_sweep_waits_out_retries_once_per_outage(clock: FakeClock) -> None:
    """Each partition on a lost primary waited out the client's retry_for in turn (k of them
    at the outage's start), and again each time its period was over."""
    layout, unreachable = Partitions("hot", 3), Unreachable(period=30, clock=clock)
    waits: list[tuple[str, float | None]] = []
    swept = Sweep[Lease](layout, 9, unreachable)
    for name in swept:
        waits.append((name, swept.retry_for(name)))
        with swept.visiting(name):
            if name != "hot":
                raise BackendError(f"{name} is down")
            swept.took(name, _lease(0))
    # the client's retries (None) until one fails, then none: the outage is known
    assert waits == [("hot", None), ("hot~p0", None), ("hot~p1", 0), ("hot~p2", 0)]
    clock.advance(31)
    again = Sweep[Lease](layout, 9, unreachable)
    assert [again.retry_for(name) for name in layout.names] == [0, 0, 0]  # tried once each
    assert again.retry_for("hot") is None


def test_a_sweep_keeps_the_jobs_leased_before_another_error() -> None:
    swept = Sweep[Lease](Partitions("hot", 2), 5, Unreachable())
    for name in swept:
        with swept.visiting(name):
            if name == "hot~p1":
                raise ValueError("a bug")
            swept.took(name, _lease(1))
    assert [len(lease.jobs) for lease in swept.leases()] == [1, 1]
    with pytest.raises(ValueError, match="a bug"):  # nothing leased yet: the error stands
        for name in (nothing := Sweep[Lease](Partitions("hot", 2), 5, Unreachable())):
            with nothing.visiting(name):
                raise ValueError("a bug")


RETRY_FOR = 0.2
"""The clients' retry_for while a primary refuses (each first try of a lost partition waits it
out)."""


def _flush_scripts(redis_cluster: LocalCluster) -> None:
    """Every primary forgets its scripts: the reserves meet NOSCRIPT on the healthy ones too
    (their SCRIPT LOAD went to every primary and failed on the lost one)."""
    for port in redis_cluster.masters():
        with redis_cluster.connect(port) as node:
            node.script_flush()


def _lost_partitions(redis_cluster: LocalCluster, topic: str, count: int) -> tuple[int, set[str]]:
    """A primary holding some partitions of ``topic`` (and neither registry key, if one
    does), and those partitions."""
    ports = {
        n: redis_cluster.master_of(TopicKeys("redisched", n).name("jobs"))
        for n in Partitions(topic, count).names
    }
    shared = redis_cluster.registry_masters()
    lost = min(set(ports.values()), key=lambda port: (port in shared, port))
    return lost, {name for name, port in ports.items() if port == lost}


def test_a_reserve_passes_over_a_partition_redis_cannot_serve(
    redis_cluster: LocalCluster, hot: PartitionedTopic
) -> None:
    """The reserve stopped at the first partition whose primary was down (a BackendError),
    though the other partitions held jobs."""
    ids = [f"j{i}" for i in range(24)]
    hot.put_many([(i, b"") for i in ids])
    lost, down = _lost_partitions(redis_cluster, hot.partitions.topic, hot.count)
    served = {i for i in ids if hot.partitions.route(i) not in down}
    assert served and served != set(ids)
    with redisched.Client.from_url(redis_cluster.url, cluster=True, retry_for=RETRY_FOR) as client:
        topic = PartitionedTopic(client, hot.partitions.topic, hot.count)
        _flush_scripts(redis_cluster)
        with redis_cluster.refusing(lost):
            got = {job.id for job in topic.reserve_many(len(ids))}
            assert got == served
            assert all(topic.unreachable.skipped(name) for name in down)
            assert topic.reserve() is None  # the others are empty; the lost ones passed over
    assert {job.id for job in hot.reserve_many(len(ids))} == set(ids) - served


async def test_an_async_reserve_passes_over_a_partition_redis_cannot_serve(
    redis_cluster: LocalCluster, hot: PartitionedTopic
) -> None:
    ids = [f"j{i}" for i in range(24)]
    hot.put_many([(i, b"") for i in ids])
    lost, down = _lost_partitions(redis_cluster, hot.partitions.topic, hot.count)
    served = {i for i in ids if hot.partitions.route(i) not in down}
    async with redisched.AsyncClient.from_url(
        redis_cluster.url, cluster=True, retry_for=RETRY_FOR
    ) as client:
        topic = AsyncPartitionedTopic(client, hot.partitions.topic, hot.count)
        await client.execute(client.ops.server_time_ms())  # the cluster's nodes discovered
        _flush_scripts(redis_cluster)
        with redis_cluster.refusing(lost):
            got = set()
            while job := await topic.reserve():
                got.add(job.id)
            assert got == served
            assert all(topic.unreachable.skipped(name) for name in down)


async def test_a_worker_starts_and_serves_the_healthy_partitions_while_one_primary_refuses(
    redis_cluster: LocalCluster, hot: PartitionedTopic
) -> None:
    """Its start read every partition's settings in one round trip, and subscribed to the
    wake-ups on the first node, the lost one: one lost primary made Worker.run raise
    BackendError. Then, started, it served none of the healthy partitions in about half the
    runs: the Worker's free slots are shared by its topics, and each lease of a lost one took
    them all while it waited out retry_for, then the next lost one did. A lessee now leases
    one job first, and probes with one job, tried once, after a failure."""
    ids = [f"w{i}" for i in range(24)]
    hot.put_many([(i, b"") for i in ids])
    lost, down = _lost_partitions(redis_cluster, hot.partitions.topic, hot.count)
    healthy = {i for i in ids if hot.partitions.route(i) not in down}
    served: set[str] = set()
    async with redisched.AsyncClient.from_url(
        redis_cluster.url, cluster=True, retry_for=RETRY_FOR
    ) as client:
        await client.execute(client.ops.server_time_ms())  # the cluster's nodes discovered
        worker = redisched.Worker(
            client, {hot.partitions.topic: lambda job: served.add(job.id)}, handle_signals=False
        )
        with redis_cluster.refusing(lost):
            task = asyncio.create_task(worker.run())
            await asyncio.wait_for(worker.wait_started(), 20)
            deadline = time.monotonic() + 10
            while not healthy <= served and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            worker.stop()
            await task  # raises what failed the run
    assert healthy <= served, sorted(healthy - served)
    assert not served - healthy  # the lost partitions' jobs wait for their node


async def test_a_worker_started_with_a_primary_down_waits_once_and_later_reads_its_backoff(
    redis_cluster: LocalCluster, hot: PartitionedTopic
) -> None:
    """Its start waited out the client's retry_for twice (the warm-up, then the settings'
    joined read), and a topic whose settings it could not read kept the default backoff
    for the whole run: its jobs, once its node was back, were retried after 1 s, not the
    topic's backoff. It now reads those settings at such a job's first retry."""
    retry_for = 4.0
    hot.client.configure(hot.partitions.topic, backoff=600, backoff_max=600)  # and its partitions
    lost, down = _lost_partitions(redis_cluster, hot.partitions.topic, hot.count)
    failing = next(f"f{i}" for i in range(200) if hot.partitions.route(f"f{i}") in down)
    hot.put(failing, b"", delay=3)  # due once the node is back
    failed = asyncio.Event()

    def handler(job: Job) -> None:
        failed.set()
        raise RuntimeError("fails once")

    async with redisched.AsyncClient.from_url(
        redis_cluster.url, cluster=True, retry_for=retry_for
    ) as client:
        await client.execute(client.ops.server_time_ms())  # the cluster's nodes discovered
        worker = redisched.Worker(client, {hot.partitions.topic: handler}, handle_signals=False)
        with redis_cluster.refusing(lost):
            started = time.monotonic()
            task = asyncio.create_task(worker.run())
            await asyncio.wait_for(worker.wait_started(), 30)
            took = time.monotonic() - started
        await asyncio.wait_for(failed.wait(), 30)  # served once its node answers
        await asyncio.sleep(0.5)  # the release
        worker.stop()
        await task
    assert took < 1.5 * retry_for, took  # twice was 2 x 3.5 s or more
    job = hot.get(failing)
    assert job is not None and job.state is JobState.SCHEDULED
    assert job.run_at.timestamp() - time.time() > 300  # the topic's backoff, not 1 s


def test_a_partition_count_cannot_change(hot: PartitionedTopic) -> None:
    with pytest.raises(InvalidArgument, match="has 6 partitions"):
        PartitionedTopic(hot.client, hot.partitions.topic, 8).declare()


async def test_async_partitions_and_a_worker_over_them(redis_cluster: LocalCluster) -> None:
    async with redisched.AsyncClient.from_url(redis_cluster.url, cluster=True) as client:
        topic = await AsyncPartitionedTopic(client, f"hot-{uuid.uuid4().hex[:8]}", 4).declare()
        await topic.put_many([(f"a{i}", b"x") for i in range(200)])
        assert (await topic.get("a5")) is not None
        seen: set[str] = set()
        finished = asyncio.Event()

        async def handle(job: Job) -> None:
            seen.add(job.id)
            if len(seen) == 200:
                finished.set()

        worker = Worker(client, {name: handle for name in topic.names}, handle_signals=False)
        task = asyncio.create_task(worker.run())
        try:
            await asyncio.wait_for(finished.wait(), 20)
        finally:
            worker.stop()
            await asyncio.wait_for(task, 30)
        assert (await topic.stats()).total_acked == 200
        assert await topic.delete("a5") is False
