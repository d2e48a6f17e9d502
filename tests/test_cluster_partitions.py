"""Partitioned topics on the cluster: by-id calls hit one node, reserves are fair."""

from __future__ import annotations

import asyncio
import collections
import uuid
import zlib
from collections.abc import Iterator

import pytest

import redisched
from redisched import InvalidArgument, Job, PutStatus, Worker
from redisched.keys import TopicKeys
from redisched.partitions import (
    AsyncPartitionedTopic,
    PartitionedTopic,
    Partitions,
    partition_of,
)
from tests.cluster import LocalCluster


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
