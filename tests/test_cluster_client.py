"""The core client suite, unchanged, against a real 3-master/3-replica Redis Cluster.

Every test of ``tests/test_client.py`` and ``tests/test_noscript.py`` runs here again, with
the ``api`` and ``raw_redis`` fixtures overridden by cluster-backed ones. Then what only a
cluster shows: topics spread over the masters, scripts loaded again on a node that lost them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.crc import key_slot

import redisched
from redisched import PutStatus, scripts
from redisched.keys import TopicKeys
from redisched.ops import Call
from tests import test_client, test_noscript
from tests.cluster import LocalCluster
from tests.conftest import BINARIES, FakeClock, SyncAsAsync

for _name, _test in [*vars(test_client).items(), *vars(test_noscript).items()]:
    if _name.startswith("test_") and callable(_test):
        globals()[_name] = _test


@pytest.fixture(params=["sync", "async"])
async def api(
    request: pytest.FixtureRequest, redis_cluster: LocalCluster, clock: FakeClock
) -> AsyncIterator[Any]:
    """Both clients on the cluster, behind one awaitable interface, on the hand-moved clock."""
    if request.param == "sync":
        sync = redisched.Client.from_url(redis_cluster.url, cluster=True, clock=clock)
        yield SyncAsAsync(sync)
        sync.close()
    else:
        url = redis_cluster.url
        async with redisched.AsyncClient.from_url(url, cluster=True, clock=clock) as client:
            yield client


@pytest.fixture
def raw_redis(redis_cluster: LocalCluster) -> Iterator[redis.RedisCluster]:
    """A redis-py cluster connection (SCRIPT FLUSH goes to every master)."""
    conn = redis.RedisCluster.from_url(redis_cluster.url)
    yield conn
    conn.close()


def test_topics_spread_over_the_masters(redis_cluster: LocalCluster) -> None:
    topics = redis_cluster.topics_on_each_master("spread", 8)
    assert len(topics) == 24
    with redisched.Client.from_url(redis_cluster.url, cluster=True) as client:
        for t in topics:
            client.put(t, "j", b"x")
        assert set(topics) <= set(client.topics())
        for t in topics:
            job = client.reserve(t)
            assert job is not None and job.id == "j"
            client.ack(job)


def test_the_cli_works_on_a_cluster(redis_cluster: LocalCluster) -> None:
    """The job commands took no --redis-cluster: a topic on another master than the URL's
    answered "Error: Redis error: 13006 127.0.0.1:…" (a MOVED reply)."""
    import json

    from click.testing import CliRunner

    from redisched.cli import main

    topics = redis_cluster.topics_on_each_master("cli", 1)
    runner = CliRunner()
    for t in topics:
        put = runner.invoke(main, ["put", "--redis-url", redis_cluster.url, "--redis-cluster",
                                   t, "j", "hello"])  # fmt: skip
        assert put.exit_code == 0, put.output
        env = {"REDISCHED_REDIS_URL": redis_cluster.url, "REDISCHED_REDIS_CLUSTER": "1"}
        got = runner.invoke(main, ["get", t, "j"], env=env)
        assert got.exit_code == 0 and json.loads(got.output)["body"] == "hello", got.output
    stats = runner.invoke(main, ["stats", "--redis-url", redis_cluster.url, "--redis-cluster"])
    assert stats.exit_code == 0, stats.output


def test_a_topics_keys_share_one_slot() -> None:
    keys = TopicKeys("redisched", "emails")
    slots = {key_slot(keys.name(part).encode()) for part in ("jobs", "ready", "meta", "wake")}
    assert len(slots) == 1


def test_a_master_that_lost_its_scripts_gets_them_again(
    redis_cluster: LocalCluster, topic: str
) -> None:
    with redisched.Client.from_url(redis_cluster.url, cluster=True) as client:
        client.put_many(topic, [("a", b"1"), ("b", b"2")])
        first = client.reserve(topic)
        port = redis_cluster.master_of(TopicKeys("redisched", topic).name("jobs"))
        shas = [scripts.get(name).sha for name in ("ack", "reserve")]
        with redis_cluster.connect(port) as node:
            node.script_flush()
            assert node.script_exists(*shas) == [False, False]
        done, lease = client.ack_and_lease(topic, [first], 1)  # two scripts, loaded again
        assert done == [True] and [j.id for j in lease.jobs] == ["b"]
        with redis_cluster.connect(port) as node:
            assert node.script_exists(*shas) == [True, True]


async def test_many_concurrent_first_calls_on_a_fresh_async_client(
    redis_cluster: LocalCluster, topic: str
) -> None:
    for _ in range(3):  # redis-py's lazy cluster discovery raced when several calls started it
        async with redisched.AsyncClient.from_url(redis_cluster.url, cluster=True) as client:
            found = await asyncio.gather(*(client.get(topic, str(i)) for i in range(64)))
            assert found == [None] * 64


def test_a_redis_6_2_cluster_works_too(tmp_path: Path) -> None:
    """The session cluster runs the newest binary; a short pass on the bundled 6.2 one."""
    with (
        LocalCluster(BINARIES["redis6"], tmp_path / "cluster62") as cluster,
        redisched.Client.from_url(cluster.url, cluster=True) as client,
    ):
        topics = [f"six-{i}" for i in range(6)]
        for t in topics:
            assert client.put(t, "j", b"x", durable=True).status is PutStatus.CREATED
        with redis.RedisCluster(host="127.0.0.1", port=cluster.ports[0]) as raw:
            raw.script_flush()
        for t in topics:
            job = client.reserve(t)
            assert job is not None and job.body == b"x"
            client.ack(job)
        assert set(topics) <= set(client.topics())


@pytest.mark.parametrize("where", ["single", "cluster"])
def test_a_read_back_after_a_reloaded_script_sees_the_write(
    where: str, redis_url: str, redis_cluster: LocalCluster, topic: str
) -> None:
    """put + get in one pipeline, where the node had lost put's script but not get's: the get
    that ran before the reloaded put is sent again after it."""
    url, cluster = (redis_url, False) if where == "single" else (redis_cluster.url, True)
    with redisched.Client.from_url(url, cluster=cluster) as client:
        client.get(topic, "warm-up")
        conn: Any = (
            redis.RedisCluster(host="127.0.0.1", port=redis_cluster.ports[0])
            if cluster
            else redis.Redis.from_url(url)
        )
        with conn:
            conn.script_flush()
            conn.script_load(scripts.get("get").source)
        put, get = client.ops.put(topic, "a", b"1"), client.ops.get(topic, "a")
        both = Call((*put.steps, *get.steps), lambda r: (put.parse(r[:1]), get.parse(r[1:])))
        result, job = client.execute(both)
        assert result.status is PutStatus.CREATED
        assert job is not None and job.body == b"1"


async def test_a_put_that_overtook_a_delete_is_listed_again_on_a_cluster(
    redis_cluster: LocalCluster,
) -> None:
    """The topics set, the deleted topics and the topic live in different slots: the delete,
    the stale put and the sweep's relisting each cross them."""
    from redisched.http.requeue import RequeueLoop

    [topic, *_] = redis_cluster.topics_on_each_master("overtaken", 1)
    url, prefix = redis_cluster.url, f"overtaken-{topic}"
    with (
        redisched.Client.from_url(url, cluster=True, prefix=prefix) as producer,
        redisched.Client.from_url(url, cluster=True, prefix=prefix) as operator,
    ):
        producer.put(topic, "a", b"")
        operator.delete_topic(topic)
        producer.put(topic, "b", b"")  # trusts its SADD of a moment ago
        assert topic not in operator.topics()
        async with redisched.AsyncClient.from_url(url, cluster=True, prefix=prefix) as service:
            assert await RequeueLoop(service, interval=1.0).relist_overtaken() == [topic]
        assert topic in operator.topics()


async def test_a_worker_starts_while_another_topics_primary_refuses(
    redis_cluster: LocalCluster,
) -> None:
    """A Worker loaded its scripts on every primary at start and raised when one failed: with
    one primary down it could not start, even for topics on the healthy ones."""
    from redisched.preflight import check_redis

    # the primary to lose holds neither of the keys every process reads at start
    shared = redis_cluster.registry_masters()
    on = {
        redis_cluster.master_of(TopicKeys("redisched", t).name("jobs")): t
        for t in redis_cluster.topics_on_each_master("w-start", 1)
    }
    port = next(p for p in on if p not in shared)
    here = next(t for p, t in on.items() if p != port)
    done = asyncio.Event()
    async with redisched.AsyncClient.from_url(redis_cluster.url, cluster=True) as client:
        with redis_cluster.refusing(port):
            check_redis(redis_cluster.url, cluster=True)  # the CLI's preflight passes too
            worker = redisched.Worker(client, {here: lambda job: done.set()}, handle_signals=False)
            task = asyncio.create_task(worker.run())
            await worker.wait_started()
            await client.put(here, "j", b"x")
            await asyncio.wait_for(done.wait(), 10)
            worker.stop()
            await asyncio.wait_for(task, 10)


def _a_topic_and_another_primary(redis_cluster: LocalCluster, prefix: str) -> tuple[str, int, int]:
    """A new topic, its primary (its scripts flushed) and another primary to lose: one that
    holds neither the topic nor the keys every process reads."""
    shared = redis_cluster.registry_masters()
    on = {
        redis_cluster.master_of(TopicKeys("redisched", t).name("jobs")): t
        for t in redis_cluster.topics_on_each_master(prefix, 1)
    }
    lost = next(p for p in on if p not in shared)
    here = next(p for p in on if p != lost)
    with redis_cluster.connect(here) as node:
        node.script_flush()
    return on[here], here, lost


def test_a_fresh_client_loads_its_scripts_while_another_primary_refuses(
    redis_cluster: LocalCluster,
) -> None:
    """A NOSCRIPT on a healthy primary sent SCRIPT LOAD to every primary, which failed on the
    lost one: the call failed though the node holding its keys was up (no retry: a retry
    passed when redis-py had loaded the script on the healthy node before the lost one)."""
    topic, here, lost = _a_topic_and_another_primary(redis_cluster, "fresh-sync")
    with (
        redisched.Client.from_url(redis_cluster.url, cluster=True, retry_for=0) as client,
        redis_cluster.refusing(lost),
    ):
        assert client.put(topic, "j", b"x").status is PutStatus.CREATED
        job = client.reserve(topic)
        assert job is not None and job.body == b"x"
        client.ack(job)
        with redis_cluster.connect(here) as node:  # a durable put's batch goes to one node
            node.script_flush()
        assert client.put(topic, "k", b"y", durable=True).status is PutStatus.CREATED


async def test_a_fresh_async_client_loads_its_scripts_while_another_primary_refuses(
    redis_cluster: LocalCluster,
) -> None:
    topic, here, lost = _a_topic_and_another_primary(redis_cluster, "fresh-async")
    async with redisched.AsyncClient.from_url(
        redis_cluster.url, cluster=True, retry_for=0
    ) as client:
        with redis_cluster.refusing(lost):
            assert (await client.put(topic, "j", b"x")).status is PutStatus.CREATED
            job = await client.reserve(topic)
            assert job is not None and job.body == b"x"
            await client.ack(job)
            with redis_cluster.connect(here) as node:
                node.script_flush()
            made = await client.put(topic, "k", b"y", durable=True)
            assert made.status is PutStatus.CREATED


async def test_loading_every_script_reaches_each_healthy_primary_while_one_refuses(
    redis_cluster: LocalCluster,
) -> None:
    """A warm-up's loads stopped at the first primary that failed (redis-py sends them to one
    primary after another), leaving the primaries after it without the scripts."""
    from redisched.errors import BackendError

    masters = redis_cluster.masters()
    lost = min(masters, key=lambda port: min(masters[port]))  # the first one redis-py asks
    healthy = [p for p in masters if p != lost]
    shas = [script.sha for script in scripts.load_all().values()]
    async with redisched.AsyncClient.from_url(
        redis_cluster.url, cluster=True, retry_for=0
    ) as client:
        await client.execute(client.ops.server_time_ms())  # the cluster's nodes discovered
        for port in healthy:
            with redis_cluster.connect(port) as node:
                node.script_flush()
        with redis_cluster.refusing(lost), pytest.raises(BackendError):
            await client.execute(client.ops.load_scripts())  # the warm-up logs it
    for port in healthy:
        with redis_cluster.connect(port) as node:
            assert all(node.script_exists(*shas)), port
