"""The HTTP service on a real Redis Cluster (``Settings(redis_cluster=True)``, what
``redisched serve --redis-cluster`` runs): the REST API tests that need only the service, the
Python client and a topic run here again on the cluster; then long-polling reserve, which
waits on the cluster wake-ups, and the serve options."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

import redisched
from redisched.config import Settings
from redisched.embedded import free_port
from redisched.http import create_app
from tests import test_http_api
from tests.cluster import LocalCluster
from tests.http_fixtures import asgi_client

_ONLY = {"http", "py", "topic"}
for _name, _test in vars(test_http_api).items():
    if (
        _name.startswith("test_")
        and inspect.iscoroutinefunction(_test)
        and set(inspect.signature(_test).parameters) <= _ONLY
    ):
        globals()[_name] = _test


@pytest.fixture
async def http(redis_cluster: LocalCluster) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to a fresh app on the cluster, in this process."""
    settings = Settings(redis_url=redis_cluster.url, redis_cluster=True, requeue_interval=0.05)
    app = create_app(settings)
    async with asgi_client(app) as client:
        yield client


@pytest.fixture
async def py(redis_cluster: LocalCluster) -> AsyncIterator[redisched.AsyncClient]:
    """The Python client on the same cluster."""
    async with redisched.AsyncClient.from_url(redis_cluster.url, cluster=True) as client:
        yield client


def test_the_http_suite_runs_here() -> None:
    names = [n for n in globals() if n.startswith("test_") and n in vars(test_http_api)]
    assert len(names) >= 10, names


async def test_a_long_poll_wakes_on_a_put_through_the_cluster(
    http: httpx.AsyncClient, py: redisched.AsyncClient, topic: str
) -> None:
    started = time.perf_counter()
    poll = asyncio.create_task(http.post(f"/v1/topics/{topic}/reserve", json={"wait": 10}))
    await asyncio.sleep(0.3)
    await py.put(topic, "j", b"x")
    response = await poll
    assert response.status_code == 200, response.text
    assert [job["id"] for job in response.json()["jobs"]] == ["j"]
    assert time.perf_counter() - started < 5


def test_cluster_and_durable_settings_from_the_environment() -> None:
    env = {
        "REDISCHED_REDIS_URL": "redis://127.0.0.1:7000/0",
        "REDISCHED_REDIS_CLUSTER": "1",
        "REDISCHED_DURABLE_PUTS": "yes",
    }
    settings = Settings.from_env(env)
    assert (settings.redis_cluster, settings.durable_puts) == (True, True)
    with pytest.raises(redisched.InvalidArgument) as err:
        Settings.from_env({"REDISCHED_REDIS_CLUSTER": "1"})
    assert err.value.argument == "REDISCHED_REDIS_CLUSTER"
    with pytest.raises(redisched.InvalidArgument) as err:
        Settings.from_env({"REDISCHED_DURABLE_PUTS": "maybe"})
    assert err.value.argument == "REDISCHED_DURABLE_PUTS"


def test_serve_redis_cluster_runs_the_service_on_the_cluster(
    redis_cluster: LocalCluster, topic: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {**os.environ, "REDISCHED_REDIS_CLUSTER": "1"}
    command = [str(Path(sys.executable).with_name("redisched")), "serve", "--port", str(port),
               "--redis-url", redis_cluster.url, "--durable-puts"]  # fmt: skip
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "serve did not answer"
            time.sleep(0.1)
        created = httpx.put(f"{base}/v1/topics/{topic}/jobs/a", json={"body": "x"}, timeout=5)
        assert created.status_code == 201, created.text
        with redisched.Client.from_url(redis_cluster.url, cluster=True) as client:
            job = client.get(topic, "a")
            assert job is not None and job.version == 1
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        log.close()


async def test_healthz_asks_every_primary_of_a_cluster(
    http: httpx.AsyncClient, redis_cluster: LocalCluster
) -> None:
    """A PING reached one node: /healthz said ok while a primary could not serve (or the
    cluster's state was fail and every job route answered 503)."""
    assert (await http.get("/healthz")).status_code == 200
    port = max(redis_cluster.masters())  # a primary other than the URL's node, most likely
    with redis_cluster.refusing(port):
        answer = await http.get("/healthz")
        assert answer.status_code == 503, answer.text
        assert answer.json()["redis"] != "ok"
    assert (await http.get("/healthz")).status_code == 200


async def test_a_partitioned_reserve_passes_over_a_partition_redis_cannot_serve(
    http: httpx.AsyncClient, redis_cluster: LocalCluster, topic: str
) -> None:
    """A reserve of a partitioned topic answered 503 when its rotation reached a partition
    whose primary was down, though the other partitions held jobs."""
    from redisched.keys import TopicKeys
    from redisched.partitions import Partitions

    assert (await http.patch(f"/v1/topics/{topic}", json={"partitions": 6})).status_code == 200
    layout = Partitions(topic, 6)
    ids = [f"j{i}" for i in range(24)]
    for job_id in ids:
        assert (await http.put(f"/v1/topics/{topic}/jobs/{job_id}", json={"body": 1})).is_success
    ports = {
        n: redis_cluster.master_of(TopicKeys("redisched", n).name("jobs")) for n in layout.names
    }
    lost = ports[layout.names[0]]
    served = {i for i in ids if ports[layout.route(i)] != lost}
    assert served and served != set(ids)  # some partitions on the lost primary, some not
    with redis_cluster.refusing(lost):
        got: set[str] = set()
        for _ in range(len(ids)):
            answer = await http.post(f"/v1/topics/{topic}/reserve", json={"count": 1})
            assert answer.status_code in (200, 204), answer.text
            got |= {j["id"] for j in answer.json()["jobs"]} if answer.status_code == 200 else set()
        assert got == served


async def test_metrics_leave_out_the_topics_of_a_primary_redis_cannot_serve(
    http: httpx.AsyncClient, redis_cluster: LocalCluster
) -> None:
    """One topic on a primary that was down made the whole scrape a 503."""
    from redisched.keys import TopicKeys

    listing = redis_cluster.master_of("redisched:topics")  # the set of all topics: kept up
    topics = sorted(
        redis_cluster.topics_on_each_master(f"m-{os.getpid()}", 1),
        key=lambda t: redis_cluster.master_of(TopicKeys("redisched", t).name("jobs")) == listing,
    )  # the first topic's primary is another than the listing's
    for t in topics:
        assert (await http.put(f"/v1/topics/{t}/jobs/j", json={"body": 1})).is_success
    lost = redis_cluster.master_of(TopicKeys("redisched", topics[0]).name("jobs"))
    assert lost != listing
    with redis_cluster.refusing(lost):
        answer = await http.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert f'topic="{topics[1]}"' in answer.text and f'topic="{topics[0]}"' not in answer.text
    unreadable = next(
        line for line in answer.text.splitlines() if line.startswith("redisched_unreadable_topics")
    )
    assert float(unreadable.split()[-1]) >= 1
