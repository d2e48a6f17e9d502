"""Durable puts: success only once a replica acknowledged the write, else NotReplicated.

On a single server (no replica) a durable put is stored but raises NotReplicated; on the
cluster it succeeds while the master's replica answers, and raises while the replica is
frozen (SIGSTOP). Durability is chosen per call, per topic (a topic setting) or per client.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

import redisched
from redisched import InvalidArgument, NotReplicated, PutStatus
from redisched.config import Settings
from redisched.embedded import EmbeddedRedis
from redisched.http import create_app
from redisched.keys import TopicKeys
from tests.cluster import LocalCluster
from tests.http_fixtures import asgi_client


def test_a_durable_put_without_replica_is_stored_but_not_replicated(redis_url: str) -> None:
    topic = f"durable-single-{time.time_ns()}"
    with redisched.Client.from_url(redis_url, durable_timeout=0.05) as client:
        started = time.perf_counter()
        with pytest.raises(NotReplicated, match="0 of 1 replica"):
            client.put(topic, "j", b"x", durable=True)
        assert time.perf_counter() - started >= 0.05  # WAIT waited for its timeout
        assert client.get(topic, "j") is not None  # stored on the primary all the same
        with pytest.raises(NotReplicated):  # a retry by id changes nothing, still unreplicated
            client.put(topic, "j", b"x", durable=True)
        assert client.get(topic, "j").version == 1  # type: ignore[union-attr]
        assert client.put(topic, "j", b"x").status is PutStatus.EXISTS  # default: no WAIT
        with pytest.raises(NotReplicated):
            client.put_many(topic, [("a", b""), ("b", b"")], durable=True)


async def test_the_async_client_waits_too(redis_url: str) -> None:
    topic = f"durable-async-{time.time_ns()}"
    async with redisched.AsyncClient.from_url(redis_url, durable_timeout=0.05) as client:
        with pytest.raises(NotReplicated):
            await client.put(topic, "j", b"x", durable=True)
        assert (await client.put(topic, "k", b"x", durable=False)).status is PutStatus.CREATED


def test_durable_settings_are_validated() -> None:
    with pytest.raises(InvalidArgument, match="durable_timeout"):
        redisched.Client.from_url("redis://127.0.0.1:1/0", durable_timeout=0)
    with pytest.raises(InvalidArgument, match="durable"):
        redisched.Client.from_url("redis://127.0.0.1:1/0", durable="yes")
    with redisched.Client.from_url("redis://127.0.0.1:1/0") as offline:
        with pytest.raises(InvalidArgument, match="durable"):
            offline.put("t", "j", b"", durable=1)  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="durable"):
            offline.configure("t", durable="on")


@contextlib.contextmanager
def frozen(node: EmbeddedRedis) -> Iterator[None]:
    """Stop a redis-server process (SIGSTOP) so that it acknowledges nothing, then resume it."""
    assert node.process is not None
    os.kill(node.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(node.process.pid, signal.SIGCONT)


def replica_of(cluster: LocalCluster, master_port: int) -> EmbeddedRedis:
    with cluster.connect(master_port) as conn:
        info = conn.info("replication")
    port = int(info["slave0"]["port"])
    return cluster.node(port)


@pytest.fixture(params=["call", "topic", "client"])
def durable_mode(request: pytest.FixtureRequest) -> str:
    """Where durability is asked for: on the call, as a topic setting, or for the client."""
    return str(request.param)


def test_durable_put_on_the_cluster_waits_for_the_masters_replica(
    redis_cluster: LocalCluster, topic: str, durable_mode: str
) -> None:
    options: dict[str, Any] = {"durable_timeout": 0.3}
    if durable_mode == "client":
        options["durable"] = True
    call = {"durable": True} if durable_mode == "call" else {}
    with redisched.Client.from_url(redis_cluster.url, cluster=True, **options) as client:
        if durable_mode == "topic":
            assert client.configure(topic, durable=True).durable is True
        assert client.put(topic, "ok", b"x", **call).status is PutStatus.CREATED
        master = redis_cluster.master_of(TopicKeys("redisched", topic).name("jobs"))
        with frozen(replica_of(redis_cluster, master)):
            with pytest.raises(NotReplicated, match="0 of 1 replica"):
                client.put(topic, "late", b"x", **call)
            assert client.put(topic, "fast", b"x", durable=False).status is PutStatus.CREATED
        assert client.get(topic, "late") is not None
        redis_cluster.wait_ready()
        assert client.put(topic, "late", b"x", **call).status is PutStatus.EXISTS  # retry by id


async def test_async_durable_put_on_the_cluster(redis_cluster: LocalCluster, topic: str) -> None:
    url = redis_cluster.url
    async with redisched.AsyncClient.from_url(url, cluster=True, durable_timeout=0.3) as client:
        results = await client.put_many(topic, [(str(i), b"x") for i in range(20)], durable=True)
        assert {r.status for r in results} == {PutStatus.CREATED}
        master = redis_cluster.master_of(TopicKeys("redisched", topic).name("jobs"))
        with frozen(replica_of(redis_cluster, master)), pytest.raises(NotReplicated):
            await client.put(topic, "late", b"x", durable=True)
    redis_cluster.wait_ready()


def test_turning_a_topic_durable_reaches_other_clients_within_the_cache_time(
    redis_url: str, topic: str
) -> None:
    with (
        redisched.Client.from_url(redis_url, durable_timeout=0.02) as writer,
        redisched.Client.from_url(redis_url) as admin,
    ):
        writer._durable_topics.ttl = 0.2  # the default is 5 s
        writer.put(topic, "a", b"")  # reads the topic's setting: off
        admin.configure(topic, durable=True)
        writer.put(topic, "b", b"")  # still trusts what it read
        time.sleep(0.25)
        with pytest.raises(NotReplicated):
            writer.put(topic, "c", b"")
        admin.configure(topic, durable=None)
        time.sleep(0.25)
        writer.put(topic, "d", b"")


async def test_the_http_service_answers_503_not_replicated(redis_url: str, topic: str) -> None:
    app = create_app(Settings(redis_url=redis_url, durable_puts=True))
    async with asgi_client(app) as http:
        response = await http.put(f"/v1/topics/{topic}/jobs/a", json={"body": "x"})
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert response.json()["error"]["code"] == "not_replicated"
        stored = await http.get(f"/v1/topics/{topic}/jobs/a")
        assert stored.status_code == 200  # on the primary, not on a replica
