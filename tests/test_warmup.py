"""Every consumer loads the scripts and reads the server's clock at start (redisched.warmup):
the push dispatcher and the HTTP service as the Worker (tests/test_worker.py), on one server
and on each master of a cluster; a Redis down at start is only logged by the services."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from redisched import AsyncClient, scripts
from redisched.commands.serve_app import dispatcher_service
from redisched.config import Settings
from redisched.embedded import EmbeddedRedis, free_port
from redisched.http import create_app, partitioned
from redisched.http.runtime import Runtime
from redisched.partitions import Partitions
from redisched.push.dispatcher import Dispatcher
from redisched.timing import ServerClock
from redisched.wakeup import Wakeups
from redisched.warmup import CLOCK_SAMPLES, warm_up
from tests.cluster import LocalCluster
from tests.conftest import BINARIES
from tests.http_fixtures import asgi_client
from tests.test_dispatcher import Receiver, configure, until
from tests.test_http_api import job_url, topic_url

SHAS = [script.sha for script in scripts.load_all().values()]


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis of this test's own: no script loaded, no command counted."""
    server = EmbeddedRedis(tmp_path, binary=BINARIES["redis7"], persistent=False).start()
    yield server
    server.stop()


@pytest.fixture
def raw(fresh: EmbeddedRedis) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(fresh.url)
    yield conn
    conn.close()


def no_noscript(raw: redis.Redis) -> None:
    errors = raw.info("errorstats")
    assert "errorstat_NOSCRIPT" not in errors, errors


def assert_clock_read(raw: redis.Redis, clock: ServerClock) -> None:
    """``clock`` knows the server's offset to within a round trip of a TIME read now."""
    sent = time.time()
    seconds, microseconds = raw.time()
    received = time.time()
    server_ms = seconds * 1000 + microseconds / 1000
    low, high = server_ms - received * 1000, server_ms - sent * 1000
    offset = clock._offset_ms
    assert offset is not None and low - 1 <= offset <= high  # 1 ms: a loaded machine


def time_calls(raw: redis.Redis) -> int:
    stats: dict[str, Any] = raw.info("commandstats")
    return int(stats.get("cmdstat_time", {}).get("calls", 0))


def script_loads(raw: redis.Redis) -> int:
    stats: dict[str, Any] = raw.info("commandstats")
    return int(stats.get("cmdstat_script|load", {}).get("calls", 0))


# -- the push dispatcher ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def dispatching(url: str, **options: Any) -> AsyncIterator[Dispatcher]:
    """A started dispatcher on ``url`` with its own client and wake-up hub."""
    async with AsyncClient.from_url(url) as client:
        wakeups = Wakeups(client.redis)
        options.setdefault("allow_private_webhooks", True)
        dispatcher = Dispatcher(client, wakeups, refresh_interval=0.2, **options)
        await dispatcher.start()
        try:
            yield dispatcher
        finally:
            await dispatcher.stop()
            await wakeups.close()


async def test_a_dispatcher_loads_the_scripts_before_its_first_lease(
    fresh: EmbeddedRedis, raw: redis.Redis
) -> None:
    """A dispatcher that finds nothing due at start has its scripts loaded all the same: the
    first job due later meets no NOSCRIPT (a SCRIPT LOAD and a retry would make it ~5 ms late)."""
    receiver = await Receiver().start()
    try:
        async with AsyncClient.from_url(fresh.url) as client, dispatching(fresh.url) as dispatcher:
            assert all(raw.script_exists(*SHAS))
            raw.config_resetstat()
            await configure(client, "fresh", receiver)
            await dispatcher.refresh()
            await client.put("fresh", "later", b"", delay=0.2)
            await until(lambda: _true(receiver.successes["later"] == 1))
        no_noscript(raw)
    finally:
        assert receiver.runner is not None
        await receiver.runner.cleanup()


async def test_a_dispatcher_reads_the_server_clock_at_start_for_every_topic(
    fresh: EmbeddedRedis, raw: redis.Redis
) -> None:
    receiver = await Receiver().start()
    try:
        async with AsyncClient.from_url(fresh.url) as client:
            await configure(client, "clocked", receiver)
            raw.config_resetstat()
            async with dispatching(fresh.url) as dispatcher:
                assert time_calls(raw) >= CLOCK_SAMPLES
                assert_clock_read(raw, dispatcher.clock)
                [runner] = dispatcher._runners.values()
                assert runner.lessee.clock is dispatcher.clock  # one clock, one lead
    finally:
        assert receiver.runner is not None
        await receiver.runner.cleanup()


async def test_a_dispatcher_given_a_clock_leaves_the_start_to_its_owner(
    fresh: EmbeddedRedis, raw: redis.Redis
) -> None:
    clock = ServerClock()
    async with dispatching(fresh.url, clock=clock) as dispatcher:
        assert dispatcher.clock is clock
        assert time_calls(raw) == 0
        assert not all(raw.script_exists(*SHAS))


async def test_a_dispatcher_starts_while_redis_is_down(caplog: pytest.LogCaptureFixture) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with caplog.at_level(logging.WARNING, "redisched.warmup"):
        async with dispatching(url) as dispatcher:
            assert dispatcher.failure() is None
    assert "the webhook dispatcher could not load the scripts" in caplog.text


# -- the HTTP service ------------------------------------------------------------------------


def runtime_of(http: httpx.AsyncClient) -> Runtime:
    rt: Runtime = http._transport.app.state.runtime  # type: ignore[attr-defined]
    return rt


async def test_the_http_service_loads_the_scripts_before_its_first_reserve(
    fresh: EmbeddedRedis, raw: redis.Redis
) -> None:
    """A long poll whose job falls due later meets no NOSCRIPT."""
    async with asgi_client(create_app(Settings(redis_url=fresh.url))) as http:
        assert all(raw.script_exists(*SHAS))
        raw.config_resetstat()
        await http.put(job_url("fresh", "later"), json={"body": 1, "delay": 0.2})
        response = await http.post(topic_url("fresh", "/reserve"), json={"wait": 10})
        assert response.status_code == 200 and response.json()["jobs"][0]["id"] == "later"
    no_noscript(raw)


async def test_each_http_process_reads_the_server_clock_at_start(
    fresh: EmbeddedRedis, raw: redis.Redis
) -> None:
    """Also an extra ``serve --workers`` process, which runs no background loop."""
    raw.config_resetstat()
    app = create_app(Settings(redis_url=fresh.url), background=False)
    async with asgi_client(app) as http:
        assert time_calls(raw) >= CLOCK_SAMPLES
        rt = runtime_of(http)
        assert_clock_read(raw, rt.clock)
        assert partitioned.lessee(rt, "t", None, None).clock is rt.clock
        lessees = partitioned.lessee(rt, "t", Partitions("t", 3), None)
        assert isinstance(lessees, partitioned.Lessees)
        assert all(lessee.clock is rt.clock for lessee in lessees.lessees.values())


async def test_the_service_and_its_dispatcher_start_once_on_one_clock(
    fresh: EmbeddedRedis, raw: redis.Redis
) -> None:
    raw.config_resetstat()
    app = create_app(Settings(redis_url=fresh.url), services=[dispatcher_service])
    async with asgi_client(app) as http:
        rt = runtime_of(http)
        [dispatcher] = [s for s in rt.services if isinstance(s, Dispatcher)]
        assert dispatcher.clock is rt.clock
        assert script_loads(raw) == len(SHAS)  # loaded once, by the app


async def test_the_service_starts_while_redis_is_down_and_serves_once_it_is_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    settings = Settings(redis_url=f"redis://127.0.0.1:{port}/0", requeue_interval=0.05)
    with caplog.at_level(logging.WARNING, "redisched.warmup"):
        app = create_app(settings, services=[dispatcher_service])
        async with asgi_client(app) as http:
            assert "the HTTP service could not load the scripts" in caplog.text
            assert (await http.get("/healthz")).status_code == 503
            server = EmbeddedRedis(tmp_path, port=port, binary=BINARIES["redis7"],
                                   persistent=False).start()  # fmt: skip
            try:
                await http.put(job_url("t", "j"), json={"body": 1})
                response = await http.post(topic_url("t", "/reserve"), json={"wait": 5})
                assert response.status_code == 200 and response.json()["jobs"][0]["id"] == "j"
            finally:
                server.stop()


# -- a cluster -------------------------------------------------------------------------------


async def test_warm_up_loads_every_script_on_each_master_of_a_cluster(
    redis_cluster: LocalCluster,
) -> None:
    masters = list(redis_cluster.masters())
    for port in masters:
        with redis_cluster.connect(port) as node:
            node.script_flush()
    async with AsyncClient.from_url(redis_cluster.url, cluster=True) as client:
        clock = ServerClock()
        await warm_up(client, clock)
    assert clock._offset_ms is not None
    for port in masters:
        with redis_cluster.connect(port) as node:
            assert all(node.script_exists(*SHAS)), port


async def _true(value: bool) -> bool:
    await asyncio.sleep(0)
    return value
