"""The uvicorn server of ``redisched serve``: quick shutdown, and the embedded Redis watched."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import click
import redis.asyncio
import uvicorn
from starlette.applications import Starlette

from ..config import Settings
from ..http.runtime import Runtime
from ..supervisor import Supervisor
from .serve_workers import RECONNECT_SIGNAL, WorkerPool

GRACE = 10
"""Seconds a graceful stop waits for requests in flight."""


def server_config(app: Starlette, settings: Settings) -> uvicorn.Config:
    """uvicorn's configuration of every ``serve`` process."""
    return uvicorn.Config(
        app, host=settings.host, port=settings.port,
        loop="uvloop", http="httptools", lifespan="on", access_log=False, log_config=None,
        timeout_graceful_shutdown=GRACE, server_header=False,
    )  # fmt: skip


class Server(uvicorn.Server):
    """uvicorn's server, plus what ``serve`` needs around it.

    - On SIGINT/SIGTERM it says so, and long polls answer at once, so the graceful shutdown
      does not wait for them; the signal is not raised again on the way out (uvicorn does
      that, which would end the process before the embedded redis-server is stopped).
    - ``on_started`` runs once the port is bound.
    - ``supervisor`` (the embedded redis-server's) runs on the event loop while serving; if
      it gives up, the server stops and :attr:`failure` says why.
    - ``workers`` (the extra HTTP processes of ``--workers``) are started once the port is
      bound, watched like the supervisor, told when the embedded Redis was restarted, and
      stopped with the server.
    - ``signals`` are those that stop it gracefully (a worker leaves SIGINT to ``serve``).
    - Once started, what starting made is frozen out of the garbage collector's reach
      (``gc.freeze``), so that full collections under load stay short.
    """

    def __init__(
        self, config: uvicorn.Config, app: Starlette, on_started: Callable[[], None],
        supervisor: Supervisor | None = None, *, workers: WorkerPool | None = None,
        signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM),
    ) -> None:  # fmt: skip
        super().__init__(config)
        self.asgi_app = app
        self.on_started = on_started
        self.supervisor = supervisor
        self.workers = workers
        self.signals = signals
        self.name = "redisched"
        self.failure: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._watch: asyncio.Task[None] | None = None
        self._pool: asyncio.Task[None] | None = None

    async def serve(self, sockets: Any = None) -> None:
        """Serve, holding the server's own background tasks (the embedded Redis's watch) in
        one TaskGroup: none outlives the server."""
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            try:
                await super().serve(sockets)
            finally:
                self._tasks = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Begin a graceful stop (uvicorn's), after telling the user and the long polls."""
        if self._loop is not None:
            if not self.should_exit:
                name = signal.Signals(sig).name
                self._loop.call_soon_threadsafe(click.echo, f"{self.name}: {name}, stopping")
            rt: Runtime | None = getattr(self.asgi_app.state, "runtime", None)
            if rt is not None:
                self._loop.call_soon_threadsafe(rt.closing.set)
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """As uvicorn's, minus raising the signal again on the way out."""
        original = {sig: signal.signal(sig, self.handle_exit) for sig in self.signals}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    async def startup(self, sockets: Any = None) -> None:
        """Start serving; then call ``on_started`` and begin watching the embedded Redis."""
        self._loop = asyncio.get_running_loop()
        try:
            await super().startup(sockets)
        except SystemExit as exc:  # uvicorn exits with status 3 when it cannot bind or start
            cause = exc.__context__
            if isinstance(cause, OSError):
                where = f"{self.config.host}:{self.config.port}"
                reason = os.strerror(cause.errno) if cause.errno else str(cause)
                self._give_up(f"could not listen on {where}: {reason}")
            else:
                self._give_up("could not start (see the log above)")
            return
        if not self.started:
            return
        # The modules, app and clients made while starting live as long as the process: out
        # of the collector's reach, a full collection (every few thousand requests under
        # load) no longer walks them all (issue 17: about a tenth of a request's CPU).
        gc.collect()
        gc.freeze()
        self.on_started()
        if self.supervisor is not None and self._tasks is not None:
            self.supervisor.give_up = self._give_up
            self.supervisor.on_restart = self.drop_stale_connections
            self._watch = self._tasks.create_task(self._supervise(), name="redis-supervisor")
        if self.workers is not None and self._tasks is not None:
            self._pool = self._tasks.create_task(self._run_workers(), name="http-workers")

    async def shutdown(self, sockets: Any = None) -> None:
        """Stop watching the embedded Redis (it is stopped on purpose now), then shut down,
        the workers at the same time."""
        for watch in (self._watch, self._pool):
            if watch is not None:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch
        if self.workers is not None:
            self.workers.terminate()
        await super().shutdown(sockets)
        if self.workers is not None:
            await self.workers.stopped()

    async def _run_workers(self) -> None:
        assert self.workers is not None
        try:
            await self.workers.run(self._give_up)
        except Exception as exc:  # a bug, or a worker that cannot be started: stop (exit 1)
            self._give_up(f"the HTTP workers failed: {exc!r}")

    async def _supervise(self) -> None:
        assert self.supervisor is not None
        try:
            await self.supervisor.run()
        except Exception as exc:  # a bug: stop serving gracefully (exit 1), not abruptly
            self._give_up(f"the embedded redis-server's supervisor failed: {exc!r}")

    async def drop_stale_connections(self) -> None:
        """Close the idle pooled connections (this process's and the workers'): they lead to
        the server that died, and redis-py would hand them out (a request's first command then
        fails with "connection closed")."""
        if self.workers is not None:
            self.workers.signal_all(RECONNECT_SIGNAL)
        rt: Runtime | None = getattr(self.asgi_app.state, "runtime", None)
        if rt is not None and isinstance(rt.client.redis, redis.asyncio.Redis):  # never a cluster
            await rt.client.redis.connection_pool.disconnect(inuse_connections=False)

    def _give_up(self, reason: str) -> None:
        self.failure = reason
        self.should_exit = True
