"""The Node.js and Go workers and servers on a real Redis Cluster (3 masters, 3 replicas).

Node goes through ioredis ``Cluster``, Go through its per-slot routing (``NewCluster``); the
topics below land on every master, and one wake-up subscription per worker hears them all.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import redisched
from redisched.keys import TopicKeys
from tests.cluster import LocalCluster
from tests.glueproc import LANGUAGES, NODE_BIN, NODE_HANDLERS, require_node, running, stop
from tests.test_glue_servers import post
from tests.workerproc import wait_for


@pytest.fixture
def cluster_client(redis_cluster: LocalCluster) -> Iterator[redisched.Client]:
    """A Python client on the session's cluster."""
    with redisched.Client.from_url(redis_cluster.url, cluster=True) as c:
        yield c


def spread_topics(cluster: LocalCluster, count: int = 9) -> list[str]:
    """``count`` topics, as many on each master as can be (at least one on every master)."""
    by_master: dict[int, list[str]] = {}
    while sum(min(len(v), -(-count // 3)) for v in by_master.values()) < count:
        topic = f"glue-cluster-{uuid.uuid4().hex[:8]}"
        master = cluster.master_of(TopicKeys("redisched", topic).name("jobs"))
        by_master.setdefault(master, []).append(topic)
    topics = [t for group in by_master.values() for t in group[: -(-count // 3)]][:count]
    assert len(by_master) == 3 and len(topics) == count
    return topics


@pytest.fixture(params=LANGUAGES)
def language(request: pytest.FixtureRequest) -> str:
    if request.param == "node":
        require_node()
    return str(request.param)


@pytest.mark.timeout(90)
def test_worker_runs_jobs_of_topics_on_every_master(
    language: str,
    redis_cluster: LocalCluster,
    cluster_client: redisched.Client,
    go_testworker: Path,
) -> None:
    topics = spread_topics(redis_cluster)
    for t in topics:
        cluster_client.put(t, "before", b"x")
    if language == "node":
        command = ["node", str(NODE_BIN), "worker", str(NODE_HANDLERS), "--cluster"]
    else:
        command = [str(go_testworker), "-cluster", *topics]
    with running(
        command, redis_cluster.url, REDISCHED_REDIS_CLUSTER="1", GLUE_TOPICS=",".join(topics)
    ) as proc:
        for t in topics:  # woken through the one subscription, whichever master holds t
            cluster_client.put(t, "after", b"x")
        wait_for(lambda: all(cluster_client.stats(t).total_acked == 2 for t in topics), 20, "acks")
        assert stop(proc) == 0


def test_server_schedules_and_cancels_on_every_master(
    language: str,
    redis_cluster: LocalCluster,
    cluster_client: redisched.Client,
    go_cli: Path,
) -> None:
    topics = spread_topics(redis_cluster, 6)
    if language == "node":
        command = ["node", str(NODE_BIN), "serve", "--port=0", "--cluster"]
    else:
        command = [str(go_cli), "serve", "-addr=127.0.0.1:0", "-cluster"]
    with running(command, redis_cluster.url) as proc:
        port = proc.ready["port"]  # type: ignore[attr-defined]
        for t in topics:
            status, _ = post(port, f"/schedule/{t}", {"id": "j", "contents": [t], "delay": 60})
            assert status == 201
            job = cluster_client.get(t, "j")
            assert job is not None and job.body == f'["{t}"]'.encode()
            assert post(port, f"/cancel/{t}", {"id": "j"})[0] == 200
            assert cluster_client.get(t, "j") is None
        assert stop(proc) == 0
