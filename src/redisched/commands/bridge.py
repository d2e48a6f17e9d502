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
    help="RabbitMQ to consume from. [env REDISCHED_AMQP_URL; default "
    "amqp://guest:guest@127.0.0.1:5672/]",
)
@click.option(
    "--queue",
    envvar="REDISCHED_AMQP_QUEUE",
    default="redisched",
    help="Queue of put/delete messages, declared durable. [env REDISCHED_AMQP_QUEUE; "
    "default redisched]",
)
@click.option(
    "--dead-letter-queue",
    envvar="REDISCHED_AMQP_DEAD_LETTER_QUEUE",
    help="Where malformed messages go. [env REDISCHED_AMQP_DEAD_LETTER_QUEUE; default "
    "<queue>.dead]",
)
@click.option(
    "--redis-url",
    envvar="REDISCHED_REDIS_URL",
    help="Redis to write to. [env REDISCHED_REDIS_URL; default: an embedded redis-server in "
    "--data-dir]",
)
@click.option(
    "--data-dir",
    envvar="REDISCHED_DATA_DIR",
    default="redisched-data",
    type=click.Path(file_okay=False, path_type=Path),
    help="The embedded Redis's data folder, without --redis-url. [env REDISCHED_DATA_DIR; "
    "default ./redisched-data]",
)
@click.option(
    "--prefetch",
    envvar="REDISCHED_AMQP_PREFETCH",
    type=click.IntRange(1, 65_535),
    default=1000,
    help="Unacked messages held at most. [env REDISCHED_AMQP_PREFETCH; default 1000]",
)
@click.option(
    "--concurrency",
    envvar="REDISCHED_AMQP_CONCURRENCY",
    type=click.IntRange(1, 1000),
    default=4,
    help="Batches committed at once. [env REDISCHED_AMQP_CONCURRENCY; default 4]",
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
    from ..embedded import EmbeddedRedis, claim_data_dir
    from ..errors import InvalidArgument, RedischedError
    from ..preflight import check_redis, redacted

    configure_logging(verbose)
    settings = BridgeSettings(
        amqp_url=amqp_url,
        queue=queue,
        dead_letter_queue=dead_letter_queue,
        prefetch=prefetch,
        concurrency=concurrency,
    )
    try:
        if redis_url:
            check_redis(redis_url)
            click.echo(f"redisched bridge: Redis at {redacted(redis_url)}, queue {queue!r}")
            asyncio.run(run_bridge(redis_url, settings))
            return
        with (
            claim_data_dir(data_dir) as folder,
            EmbeddedRedis(folder, die_with_owner=True) as server,
        ):
            click.echo(f"redisched bridge: embedded redis-server on {server.url}, data in {folder}")
            asyncio.run(run_bridge(server.url, settings))
    except InvalidArgument as exc:
        raise click.ClickException(f"{exc.argument}: {exc.message}") from exc
    except RedischedError as exc:
        raise click.ClickException(str(exc)) from exc


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
