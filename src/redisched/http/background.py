"""A background loop of the server (the requeue sweep, the throughput sampler).

Each runs as one task of the TaskGroup that the app's lifespan holds, so none outlives the
app. An error escaping the loop ends that loop only, never the group (which would cancel the
lifespan and so the server): it is logged and kept, and ``/healthz`` answers 503 naming the
loop (:meth:`BackgroundLoop.failure`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..errors import RedischedError

log = logging.getLogger(__name__)


class BackgroundLoop:
    """The task bookkeeping of one loop: start it in a TaskGroup, stop it, say if it died.

    Subclasses write :meth:`_pass`, run every ``interval`` seconds until :meth:`stop` (or
    a whole :meth:`_run`, which returns once ``_stopping`` is set).

    Args:
        group: the TaskGroup to run in (None: a task of its own, for use outside an app).
    """

    name = "the loop"
    """How ``/healthz`` and the log name the loop."""
    cancel_on_stop = False
    """Cancel the task on :meth:`stop` (True) or let its current pass finish (False)."""

    interval = 60.0
    """Seconds between two passes."""

    def __init__(self, group: asyncio.TaskGroup | None = None) -> None:
        self._group = group
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._error: Exception | None = None

    async def _pass(self) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._pass()
            except RedischedError as exc:
                # redis-py may turn a cancellation into a connection error: check the flag.
                if not self._stopping.is_set():
                    log.warning("%s failed: %s", self.name, exc)
            except Exception:  # a bug must not end the loop for the life of the process
                log.exception("%s failed", self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)

    async def _guarded(self) -> None:
        try:
            await self._run()
        except Exception as exc:  # kept for failure(): the group and the app go on
            self._error = exc
            log.exception("%s failed", self.name)

    async def start(self) -> None:
        """Start the loop in the background."""
        if self._task is None:
            self._stopping.clear()
            self._error = None
            task_name = "redisched " + self.name.removeprefix("the ")
            if self._group is None:
                self._task = asyncio.create_task(self._guarded(), name=task_name)
            else:
                self._task = self._group.create_task(self._guarded(), name=task_name)

    async def stop(self) -> None:
        """Stop the loop and wait for its task to end."""
        if self._task is not None:
            self._stopping.set()
            if self.cancel_on_stop:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def failure(self) -> str | None:
        """Why the loop is not running although it should, or None while it runs."""
        task = self._task
        if task is None or not task.done() or self._stopping.is_set():
            return None
        if self._error is not None:
            return f"{self.name} stopped: {self._error!r}"
        return f"{self.name} stopped"
