"""One extra HTTP process of ``redisched serve --workers N`` (``python -m`` this module).

It reads a :class:`~.serve_workers.WorkerOrder` from its stdin, binds its own socket on the
port with ``SO_REUSEPORT`` and serves the API and dashboard until SIGTERM, without the
background services (the first process runs them). SIGINT is ignored: a Ctrl-C reaches the
whole process group, and ``serve`` then stops its workers itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from .serve_app import build_app
from .serve_server import Server, server_config
from .serve_workers import RECONNECT_SIGNAL, WorkerOrder, reuse_port_socket


def main() -> int:
    """Serve as the order on stdin says; the exit status (1: the port could not be bound)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    order = WorkerOrder.decode(sys.stdin.buffer.read())  # written by serve, our parent
    from ..cli import configure_logging

    configure_logging(order.verbose)
    if not order.verbose:
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    settings = order.settings
    sock = reuse_port_socket(settings.host, settings.port, exclusive=False)
    app = build_app(settings, background=False)
    server = Server(server_config(app, settings), app, lambda: None, signals=(signal.SIGTERM,))
    server.name = f"redisched HTTP worker (pid {os.getpid()})"
    reconnects: set[asyncio.Task[None]] = set()

    def on_started() -> None:
        loop = asyncio.get_running_loop()

        def reconnect() -> None:
            task = loop.create_task(server.drop_stale_connections())
            reconnects.add(task)
            task.add_done_callback(reconnects.discard)

        loop.add_signal_handler(RECONNECT_SIGNAL, reconnect)

    server.on_started = on_started
    server.run(sockets=[sock])
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
