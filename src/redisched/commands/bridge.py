"""``redisched bridge amqp``: feed redisched from a RabbitMQ queue until SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..cli import configure_logging

if TYPE_CHECKING:
    from ..bridges.amqp import BridgeSettings


@click.group()
def bridge() -> None:
    """Turn broker messages into puts and deletes."""


@bridge.command()
@click.option(
    "--amqp-url",
    envvar="REDISCHED_AMQP_URL",
    default="amqp://guest:guest@127.0.0.1:5672/",
    show_default=True,
    help="RabbitMQ to consume from.",
)
@click.option(
    "--queue",
    envvar="REDISCHED_AMQP_QUEUE",
    default="redisched",
    show_default=True,
    help="Queue of put/delete messages (declared durable).",
)
@click.option(
    "--dead-letter-queue",
    envvar="REDISCHED_AMQP_DEAD_LETTER_QUEUE",
    help="Where malformed messages go  [default: <queue>.dead]",
)
@click.option(
    "--redis-url",
    envvar="REDISCHED_REDIS_URL",
    help="Redis to write to  [default: an embedded redis-server in --data-dir]",
)
@click.option(
    "--data-dir",
    envvar="REDISCHED_DATA_DIR",
    default="redisched-data",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The embedded Redis's data folder (without --redis-url).",
)
@click.option(
    "--prefetch",
    envvar="REDISCHED_AMQP_PREFETCH",
    type=click.IntRange(1, 65_535),
    default=1000,
    show_default=True,
    help="Unacked messages held at most.",
)
@click.option(
    "--concurrency",
    envvar="REDISCHED_AMQP_CONCURRENCY",
    type=click.IntRange(1, 1000),
    default=4,
    show_default=True,
    help="Batches committed at once.",
)
@click.option("--verbose", "-v", is_flag=True, help="Log at DEBUG level.")
def amqp(
    amqp_url: str,
    queue: str,
    dead_letter_queue: str | None,
    redis_url: str | None,
    data_dir: Path,
    prefetch: int,
    concurrency: int,
    verbose: bool,
) -> None:
    """Consume a RabbitMQ queue of JSON put/delete messages into redisched.

    Each message is acked once Redis has committed it; malformed ones go to the
    dead-letter queue with the reason in the x-redisched-error header.
    """
    from ..bridges.amqp import BridgeSettings

    configure_logging(verbose)
    settings = BridgeSettings(
        amqp_url=amqp_url,
        queue=queue,
        dead_letter_queue=dead_letter_queue,
        prefetch=prefetch,
        concurrency=concurrency,
    )
    if redis_url:
        asyncio.run(run_bridge(redis_url, settings))
        return
    from ..embedded import EmbeddedRedis

    try:  # the same folder lock and stale-server cleanup as `redisched serve`
        from .serve import PIDFILE, data_dir_lock, stop_stale_server
    except ImportError as exc:
        raise click.ClickException(
            f"the embedded Redis needs redisched[server] ({exc}); or pass --redis-url"
        ) from exc
    data_dir = data_dir.resolve()
    with data_dir_lock(data_dir):
        stop_stale_server(data_dir)
        pidfile = ("--pidfile", str(data_dir / PIDFILE))
        with EmbeddedRedis(data_dir, extra_args=pidfile) as server:
            click.echo(
                f"redisched bridge: embedded redis-server on {server.url}, data in {data_dir}"
            )
            asyncio.run(run_bridge(server.url, settings))


async def run_bridge(redis_url: str, settings: BridgeSettings) -> None:
    """Run one bridge on ``redis_url`` until SIGTERM or SIGINT, then shut down cleanly."""
    from ..bridges.amqp import AmqpBridge
    from ..client import AsyncClient

    async with AsyncClient.from_url(redis_url) as client:
        runner = AmqpBridge(client, settings)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, runner.request_stop)
        try:
            await runner.run()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
