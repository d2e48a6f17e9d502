"""The server's background loops (requeue sweep, throughput sampler) run in the lifespan's
TaskGroup: a loop that dies turns ``/healthz`` to 503 naming it while the app serves on, and
no loop outlives the app."""

from __future__ import annotations

import asyncio

import pytest

from redisched.config import Settings
from redisched.http import create_app
from redisched.http.background import BackgroundLoop
from redisched.http.requeue import RequeueLoop
from redisched.http.throughput import ThroughputSampler
from tests.http_fixtures import asgi_client

LOOP_TASKS = ("redisched requeue sweep", "redisched throughput sampler")


def loop_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() in LOOP_TASKS]


async def test_an_error_escaping_a_loop_is_named_by_healthz_and_the_app_serves_on(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: ThroughputSampler) -> None:
        raise RuntimeError("sampler bug")

    monkeypatch.setattr(ThroughputSampler, "_run", broken)
    app = create_app(Settings(redis_url=redis_url))
    async with asgi_client(app) as web:
        runtime = app.state.runtime
        sampler = next(s for s in runtime.services if isinstance(s, ThroughputSampler))
        await asyncio.wait_for(asyncio.shield(sampler._task), 5)  # ended, error kept
        health = await web.get("/healthz")
        assert health.status_code == 503
        assert (
            "the throughput sampler stopped: RuntimeError('sampler bug')" in health.json()["redis"]
        )
        # The group went on: the requeue sweep still runs and the API answers.
        requeue = next(s for s in runtime.services if isinstance(s, RequeueLoop))
        assert requeue._task is not None and not requeue._task.done()
        assert (await web.get("/v1/topics")).status_code == 200
    assert loop_tasks() == []


async def test_no_background_loop_outlives_the_app(redis_url: str) -> None:
    async with asgi_client(create_app(Settings(redis_url=redis_url, requeue_interval=0.05))) as web:
        running = loop_tasks()
        assert sorted(t.get_name() for t in running) == sorted(LOOP_TASKS)
        assert (await web.get("/healthz")).status_code == 200
    assert all(t.done() for t in running)
    assert loop_tasks() == []


async def test_a_loop_outside_an_app_runs_in_a_task_of_its_own() -> None:
    passes = 0

    class Counting(BackgroundLoop):
        name = "the counting loop"

        async def _run(self) -> None:
            nonlocal passes
            while not self._stopping.is_set():
                passes += 1
                await asyncio.sleep(0.001)

    loop = Counting()
    await loop.start()
    await asyncio.sleep(0.02)
    assert loop.failure() is None and passes > 0
    await loop.stop()
    assert loop.failure() is None and loop._task is None
