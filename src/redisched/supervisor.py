"""Keep the embedded redis-server running: restart it from its data folder when it dies.

``redisched serve`` runs one :class:`Supervisor` on its event loop. It notices a dead server
within ``poll_interval`` (reaping it, so no zombie is left), restarts it on the same port and
unix socket, from the same append-only file, with bounded retries and exponential backoff,
logging each attempt with its cause; when every attempt fails it calls ``give_up`` with the
reason, and ``serve`` exits non-zero so that the machine's supervisor (systemd, Kubernetes)
restarts the whole service.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .embedded import EmbeddedRedis, EmbeddedRedisError

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Supervisor:
    """Restarts ``server`` when its process ends.

    Attributes:
        server: a started EmbeddedRedis (its port is kept across restarts).
        give_up: called once, with the reason, when the server cannot be brought back
            (``serve`` sets it to stop the server).
        on_restart: awaited after each successful restart (``serve`` drops its pooled
            connections there: they lead to the dead server).
        retries: restarts tried in a row before giving up.
        backoff: seconds before the second attempt, doubled for each further one.
        max_backoff: the longest wait between two attempts.
        start_timeout: seconds a restarted server has to answer PING (it reloads its AOF).
        poll_interval: seconds between two checks of the process.
        restarts: how many times the server was brought back.
    """

    server: EmbeddedRedis
    give_up: Callable[[str], None] = lambda _reason: None
    on_restart: Callable[[], Awaitable[None]] | None = None
    retries: int = 5
    backoff: float = 0.5
    max_backoff: float = 8.0
    start_timeout: float = 30.0
    poll_interval: float = 0.1
    restarts: int = field(default=0, init=False)

    async def run(self) -> None:
        """Watch the server until cancelled, or until it cannot be restarted."""
        process = self.server.process
        if process is None:
            raise EmbeddedRedisError("the supervised redis-server was never started")
        while True:
            await asyncio.sleep(self.poll_interval)
            process = self.server.process
            if process is not None and process.poll() is None:
                continue
            cause = self.server.exit_reason()
            tail = self.server.last_log_line()
            log.error(
                "the embedded redis-server (pid %d) %s; restarting it from %s%s",
                process.pid if process is not None else 0, cause, self.server.data_dir,
                f" (its last log line: {tail})" if tail else "",
            )  # fmt: skip
            if not await self.restart():
                self.give_up(
                    f"the embedded redis-server {cause} and could not be restarted after "
                    f"{self.retries} attempts: see {self.server.log_path}"
                )
                return

    async def restart(self) -> bool:
        """Try up to ``retries`` restarts; True once the server answers again."""
        for attempt in range(1, self.retries + 1):
            if attempt > 1:
                await asyncio.sleep(min(self.max_backoff, self.backoff * 2 ** (attempt - 2)))
            try:
                # Spawned from the event loop's thread, the one that lives as long as serve,
                # so the kernel's parent-death signal fires only when serve ends.
                self.server.spawn()
                await self._wait_ready()
            except EmbeddedRedisError as exc:
                log.warning(
                    "restart %d/%d of the embedded redis-server failed: %s",
                    attempt, self.retries, exc,
                )  # fmt: skip
                self.server.kill()  # reaped: no zombie, nothing holding the port
                continue
            self.restarts += 1
            if self.on_restart is not None:
                await self.on_restart()
            log.warning(
                "the embedded redis-server is back on %s (restart %d/%d)",
                self.server.url, attempt, self.retries,
            )  # fmt: skip
            return True
        return False

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while not await asyncio.to_thread(self.server.ready):
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(
                    f"it did not answer on {self.server.where} in {self.start_timeout}s"
                )
            await asyncio.sleep(0.02)
