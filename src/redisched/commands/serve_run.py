"""Running ``redisched serve``: check the Redis URL, or start and supervise an embedded
redis-server, then serve until SIGINT/SIGTERM."""

from __future__ import annotations

import contextlib
import logging
import socket

import click

from ..config import Settings
from ..embedded import EmbeddedRedis, PortInUse, claim_data_dir
from ..preflight import check_redis, redacted
from ..supervisor import Supervisor
from .serve_app import build_app
from .serve_server import GRACE, Server, server_config
from .serve_workers import WorkerOrder, WorkerPool, bound_port, reuse_port_socket


def run(
    settings: Settings,
    amqp_url: str | None = None,
    amqp_queue: str | None = None,
    redis_url_argument: str = "--redis-url",
) -> None:
    """Run the service until SIGINT/SIGTERM, with a supervised embedded Redis if no URL is
    set, and the AMQP bridge if ``amqp_url`` is given; with ``settings.workers`` above 1,
    the extra HTTP processes too (:mod:`.serve_workers`). ``redis_url_argument`` names the
    Redis URL's source in an error about it.

    Raises:
        RedischedError: a setting is refused, the Redis URL is bad or does not answer, or
            the embedded Redis cannot start.
        click.ClickException: the port could not be bound, or the embedded Redis died and
            could not be restarted (the exit status is then 1).
    """
    settings.check_exposure()
    with contextlib.ExitStack() as stack:
        supervisor: Supervisor | None = None
        if settings.redis_url is None:
            data_dir = stack.enter_context(claim_data_dir(settings.data_dir))
            embedded = EmbeddedRedis(
                data_dir, port=settings.redis_port, appendfsync=settings.appendfsync,
                tcp=settings.redis_port != 0, die_with_owner=True,
            )  # fmt: skip
            _start(stack, embedded)
            supervisor = Supervisor(embedded)
            worker_redis_url = embedded.socket_url or embedded.url
            settings = settings.with_changes(redis_url=worker_redis_url)
            where = [
                f"data in {data_dir} (embedded redis-server on {embedded.url}, "
                f"AOF appendfsync {settings.appendfsync})",
                f"workers connect with REDISCHED_REDIS_URL={worker_redis_url}",
            ]
        else:
            check_redis(
                settings.redis_url, cluster=settings.redis_cluster, argument=redis_url_argument
            )
            worker_redis_url = settings.redis_url
            where = [f"Redis at {redacted(settings.redis_url)}"]

        def started() -> None:
            click.echo(f"redisched listening on http://{_host(settings.host)}:{settings.port}")
            for line in where:
                click.echo(f"redisched {line}")
            if not settings.tokens:
                click.echo("redisched API tokens: none (every client may use the API)")

        sockets: list[socket.socket] | None = None
        pool: WorkerPool | None = None
        if settings.workers > 1 or settings.port == 0:  # port 0: the one bound is printed
            sock = _listen(settings)
            sockets = [sock]
            settings = settings.with_changes(port=bound_port(sock))
        if settings.workers > 1:
            order = WorkerOrder(
                settings.with_changes(redis_url=worker_redis_url),
                logging.getLogger().isEnabledFor(logging.DEBUG),
            )  # fmt: skip
            pool = WorkerPool(settings.workers - 1, order, grace=GRACE + 5)
            where.append(f"{settings.workers} HTTP processes share the port (SO_REUSEPORT)")

        app = build_app(settings, amqp_url, amqp_queue)
        server = Server(server_config(app, settings), app, started, supervisor, workers=pool)
        server.run(sockets=sockets)
        if server.failure is not None:
            raise click.ClickException(server.failure)
        if not server.started:
            raise click.ClickException(
                f"could not listen on {settings.host}:{settings.port} (see the log above)"
            )
    click.echo("redisched stopped")


def _start(stack: contextlib.ExitStack, embedded: EmbeddedRedis) -> None:
    """Start the embedded server, stopped when ``stack`` closes.

    Raises:
        PortInUse: its port is taken (by another Redis, say); the message names --redis-port.
    """
    try:
        stack.enter_context(embedded)
    except PortInUse as exc:
        raise PortInUse(
            f"--redis-port {embedded.port} is in use by another process, so the embedded "
            f"redis-server could not start: pick a free port, or 0 for none ({exc})"
        ) from exc


def _listen(settings: Settings) -> socket.socket:
    """The first process's socket on the port, which the workers bind too."""
    try:
        return reuse_port_socket(settings.host, settings.port)
    except OSError as exc:
        raise click.ClickException(
            f"could not listen on {settings.host}:{settings.port}: {exc.strerror or exc}"
        ) from exc


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
