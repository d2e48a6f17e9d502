"""Background tasks in asyncio.TaskGroups (push dispatcher, serve): an escaped error turns /healthz
to 503, and the service still stops gracefully."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from redisched.commands.serve_app import dispatcher_service
from redisched.config import Settings
from redisched.http import create_app
from redisched.push.dispatcher import Dispatcher
from tests.http_fixtures import asgi_client


def alone(redis_url: str) -> Settings:
    """Settings under a prefix of their own: no topic (and no webhook) of another test."""
    return Settings(redis_url=redis_url, prefix=f"dispatch-{uuid.uuid4().hex[:8]}")


async def test_a_crashed_dispatcher_task_turns_healthz_to_503_and_stop_is_graceful(
    redis_url: str,
) -> None:
    app = create_app(alone(redis_url), services=[dispatcher_service])
    async with asgi_client(app) as web:
        assert (await web.get("/healthz")).status_code == 200
        runtime = app.state.runtime
        [dispatcher] = [s for s in runtime.services if isinstance(s, Dispatcher)]

        async def crash() -> None:
            raise RuntimeError("a bug in a background loop")

        dispatcher._spawn(crash(), "crash")  # what an escaped exception does
        await asyncio.sleep(0)  # the crash task runs (the group then cancels the rest)
        health = await web.get("/healthz")  # at once: not after every runner stopped
        assert health.status_code == 503
        assert "crash failed: RuntimeError('a bug in a background loop')" in health.json()["redis"]
        assert dispatcher._main is not None
        await asyncio.wait({dispatcher._main}, timeout=5)  # the group ends them all
        assert dispatcher._discovery is not None and dispatcher._discovery.done()
    assert dispatcher._main is None and dispatcher._group is None  # stopped, nothing left


async def test_stop_waits_for_every_task_of_the_group(redis_url: str) -> None:
    app = create_app(alone(redis_url), services=[dispatcher_service])
    async with asgi_client(app) as web:
        assert (await web.get("/healthz")).status_code == 200
        [dispatcher] = [s for s in app.state.runtime.services if isinstance(s, Dispatcher)]
        finished = asyncio.Event()

        async def slow() -> None:
            await asyncio.sleep(0.2)
            finished.set()

        dispatcher._spawn(slow(), "slow")
    assert finished.is_set()  # the group waited for it before the app stopped
    assert dispatcher.failure() is None


async def test_a_crashed_supervisor_stops_serve_gracefully_with_the_reason() -> None:
    import uvicorn
    from starlette.applications import Starlette

    from redisched.commands.serve_server import Server

    class Broken:
        give_up: object = None

        async def run(self) -> None:
            raise RuntimeError("bug in the watch")

    app = Starlette()
    server = Server(uvicorn.Config(app), app, lambda: None, Broken())  # type: ignore[arg-type]
    await server._supervise()
    assert server.should_exit and server.failure is not None
    assert "bug in the watch" in server.failure


async def test_a_start_that_fails_leaves_no_session_or_task_behind(redis_url: str) -> None:
    """A closed client (ClientClosed) fails start(); its HTTP session and task group were left
    open ("Unclosed client session"), with nothing to stop them: start() undoes them."""
    from redisched import AsyncClient, ClientClosed
    from redisched.wakeup import Wakeups

    client = AsyncClient.from_url(redis_url, prefix=alone(redis_url).prefix)
    wakeups = Wakeups(client.redis, client.ops.prefix)
    await client.close()
    for warm in (True, False):  # failing in the clock's warm-up, or in the first refresh
        dispatcher = Dispatcher(client, wakeups)
        if not warm:
            dispatcher._own_clock = False
        with pytest.raises(ClientClosed):
            await dispatcher.start()
        assert dispatcher._session is None and dispatcher._main is None
        left = [t for t in asyncio.all_tasks() if t.get_name().startswith("redisched-dispatch")]
        assert not left
    await wakeups.close()
