"""The extra HTTP processes of ``redisched serve --workers N``.

The first process (``serve`` itself) binds the port with ``SO_REUSEPORT`` and runs everything
that must run once: the embedded redis-server and its supervisor, the push dispatcher, the
requeue sweep, the throughput sampler and the AMQP bridge. It starts N-1 more processes
(:mod:`.serve_worker`), each binding its own socket on the same port and serving the API and
dashboard only; the kernel spreads new connections over the N sockets. Each process has its
own Redis connections and wake-up listener, so a long poll waits in whichever process took it.

A worker dies with ``serve`` (``PR_SET_PDEATHSIG``, as the embedded redis-server does), is
stopped with SIGTERM when ``serve`` stops, and is started again if it exits on its own; if
workers exit :data:`MAX_EXITS` times within :data:`EXIT_WINDOW` seconds, ``serve`` stops
with status 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from ..config import Settings
from ..embedded import die_with_parent

log = logging.getLogger(__name__)

RESTART_DELAY = 1.0
"""Seconds before a worker that exited is started again."""
EXIT_WINDOW = 60.0
MAX_EXITS = 5
"""Workers exiting this many times within EXIT_WINDOW seconds stop ``serve`` (status 1)."""
WATCH_INTERVAL = 0.2
"""Seconds between looks at the workers."""
RECONNECT_SIGNAL = signal.SIGUSR1
"""Tells a worker that the embedded redis-server was restarted: drop its idle connections."""


def reuse_port_socket(host: str, port: int, *, exclusive: bool = True) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` that other sockets of this user may bind
    too (``SO_REUSEPORT``).

    With ``exclusive`` (the first process), a port some other program listens on is refused
    (``EADDRINUSE``) instead of shared with it.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    if exclusive and port:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def bound_port(sock: socket.socket) -> int:
    """The port ``sock`` is bound to (the one picked for port 0)."""
    port: int = sock.getsockname()[1]
    return port


@dataclass(frozen=True, slots=True)
class WorkerOrder:
    """What a worker process reads from its stdin: the settings to serve with (the Redis URL
    and port already resolved) and the log level."""

    settings: Settings
    verbose: bool

    def encode(self) -> bytes:
        """This order as JSON (the worker reads it with :meth:`decode`)."""
        return msgspec.json.encode(self, enc_hook=str)  # Path as its text

    @staticmethod
    def decode(data: bytes) -> WorkerOrder:
        """The order that :meth:`encode` wrote."""
        return msgspec.json.decode(data, type=WorkerOrder, dec_hook=_path)


def _path(kind: type, value: object) -> object:
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError(f"{kind!r} in a worker order")


class WorkerPool:
    """Starts, watches and stops the extra HTTP processes of ``serve``.

    Start and restart happen on the thread that runs the event loop: ``PR_SET_PDEATHSIG``
    fires when the thread that started a process ends.
    """

    def __init__(self, count: int, order: WorkerOrder, grace: float) -> None:
        """``count`` processes serving as ``order`` says; ``grace`` seconds to stop."""
        self.order = order
        self.grace = grace
        self.processes: list[subprocess.Popen[bytes] | None] = [None] * count
        self.stopping = False
        self._exits: list[float] = []

    def pids(self) -> list[int]:
        """The running workers' process ids."""
        return [p.pid for p in self.processes if p is not None and p.poll() is None]

    def spawn(self, slot: int) -> None:
        """Start the worker of ``slot`` (numbered from 2 in the log: ``serve`` is 1)."""
        process = subprocess.Popen(
            [sys.executable, "-m", "redisched.commands.serve_worker"],
            stdin=subprocess.PIPE, preexec_fn=die_with_parent(),
        )  # fmt: skip
        assert process.stdin is not None
        with process.stdin:
            process.stdin.write(self.order.encode())
        self.processes[slot] = process
        log.info("HTTP worker %d started (pid %d)", slot + 2, process.pid)

    async def run(self, give_up: Callable[[str], None]) -> None:
        """Start every worker, then start again those that exit, until :meth:`terminate`;
        call ``give_up`` with the reason when they exit too often."""
        for slot in range(len(self.processes)):
            self.spawn(slot)
        while not self.stopping:
            await asyncio.sleep(WATCH_INTERVAL)
            for slot, process in enumerate(self.processes):
                if process is None or self.stopping or (status := process.poll()) is None:
                    continue
                now = time.monotonic()
                self._exits = [t for t in self._exits if now - t < EXIT_WINDOW] + [now]
                reason = f"HTTP worker {slot + 2} (pid {process.pid}) exited with status {status}"
                if len(self._exits) >= MAX_EXITS:
                    give_up(f"{reason}, {MAX_EXITS} exits within {EXIT_WINDOW:g} s")
                    return
                log.warning("%s; starting it again", reason)
                self.processes[slot] = None
                await asyncio.sleep(RESTART_DELAY)
                if not self.stopping:
                    self.spawn(slot)

    def signal_all(self, sig: int) -> None:
        """Send ``sig`` to every running worker."""
        for process in self.processes:
            if process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(sig)

    def terminate(self) -> None:
        """Ask every worker to stop (SIGTERM: a graceful stop); none is started again."""
        self.stopping = True
        self.signal_all(signal.SIGTERM)

    async def stopped(self) -> None:
        """Return once every worker has exited; kill those still running after ``grace``."""
        self.terminate()
        deadline = time.monotonic() + self.grace
        while self.pids() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for process in self.processes:
            if process is not None and process.poll() is None:
                log.warning("HTTP worker pid %d did not stop in time; killing it", process.pid)
                process.kill()
                process.wait()
