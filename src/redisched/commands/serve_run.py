"""Running ``redisched serve``: check the Redis URL, or start and supervise an embedded
redis-server, then serve until SIGINT/SIGTERM."""

from __future__ import annotations

import contextlib

import click
import uvicorn

from ..config import Settings
from ..embedded import EmbeddedRedis, claim_data_dir
from ..preflight import check_redis, redacted
from ..supervisor import Supervisor
from .serve_app import build_app
from .serve_server import Server


def run(settings: Settings, amqp_url: str | None = None, amqp_queue: str | None = None) -> None:
    """Run the service until SIGINT/SIGTERM, with a supervised embedded Redis if no URL is
    set, and the AMQP bridge if ``amqp_url`` is given.

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
                die_with_owner=True,
            )  # fmt: skip
            stack.enter_context(embedded)
            supervisor = Supervisor(embedded)
            settings = settings.with_changes(redis_url=embedded.url)
            where = [
                f"data in {data_dir} (embedded redis-server on {embedded.url}, "
                f"AOF appendfsync {settings.appendfsync})",
                f"workers connect with REDISCHED_REDIS_URL={embedded.socket_url or embedded.url}",
            ]
        else:
            check_redis(settings.redis_url, cluster=settings.redis_cluster)
            where = [f"Redis at {redacted(settings.redis_url)}"]

        def started() -> None:
            click.echo(f"redisched listening on http://{_host(settings.host)}:{settings.port}")
            for line in where:
                click.echo(f"redisched {line}")
            if not settings.tokens:
                click.echo("redisched API tokens: none (every client may use the API)")

        app = build_app(settings, amqp_url, amqp_queue)
        config = uvicorn.Config(
            app, host=settings.host, port=settings.port,
            loop="uvloop", http="httptools", lifespan="on", access_log=False, log_config=None,
            timeout_graceful_shutdown=10, server_header=False,
        )  # fmt: skip
        server = Server(config, app, started, supervisor)
        server.run()
        if server.failure is not None:
            raise click.ClickException(server.failure)
        if not server.started:
            raise click.ClickException(
                f"could not listen on {settings.host}:{settings.port} (see the log above)"
            )
    click.echo("redisched stopped")


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
