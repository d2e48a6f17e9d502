"""``redisched bridge amqp``: feed redisched from a RabbitMQ queue until SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import click

from ..bridges.settings import BridgeSettings
from ..cli import configure_logging
from ..config import DATA_DIR, PREFIX, REDIS_CLUSTER, REDIS_URL, Settings, redis_url_argument
from ..setting import default, env_value
from .options import chosen, fail, option, options


@click.group()
def bridge() -> None:
    """Turn broker messages into puts and deletes."""


@bridge.command()
@options(BridgeSettings)
@option(
    "redis_url", REDIS_URL, help="Redis to write to; none starts an embedded one in --data-dir."
)
@option("redis_cluster", REDIS_CLUSTER)
@option("prefix", PREFIX, "redisched")
@option("data_dir", DATA_DIR, help="The embedded Redis's data folder, without --redis-url.")
@click.option("--verbose", "-v", is_flag=True, help="Log at DEBUG level.")
def amqp(
    redis_url: str | None,
    redis_cluster: bool | None,
    prefix: str | None,
    data_dir: Path | None,
    verbose: bool,
    **given: Any,
) -> None:
    """Consume a RabbitMQ queue of JSON put/delete messages into redisched.

    Each message is acked once Redis has committed it; malformed ones go to the
    dead-letter queue with the reason in the x-redisched-error header.
    """
    from ..embedded import EmbeddedRedis, claim_data_dir
    from ..errors import InvalidArgument, RedischedError
    from ..preflight import check_redis, redacted

    try:  # before Redis is checked or an embedded one started
        import aio_pika  # noqa: F401
    except ModuleNotFoundError as exc:
        raise click.ClickException(
            f"bridge amqp needs the amqp extra (no module {exc.name!r}): "
            "pip install 'redisched[amqp]'"
        ) from exc

    configure_logging(verbose)
    try:
        settings = BridgeSettings.from_env(**chosen(given))
        if redis_url == "":  # given, but empty: a mistake (an unset variable?), not a wish
            raise click.UsageError(  # for an embedded Redis
                "--redis-url: is empty: give a Redis URL, or leave the option out for an "
                "embedded one in --data-dir"
            )
        argument = redis_url_argument(redis_url)
        redis_url = redis_url or env_value(REDIS_URL)
        cluster = bool(env_value(REDIS_CLUSTER) if redis_cluster is None else redis_cluster)
        if cluster and not redis_url:
            needs = "needs the URL of a cluster node (--redis-url)"
            raise InvalidArgument("--redis-cluster", needs)
        data_dir = data_dir or env_value(DATA_DIR) or default(Settings, "data_dir")
        prefix = prefix or env_value(PREFIX)  # serve's keys, which its own bridge writes
        if redis_url:
            check_redis(redis_url, cluster=cluster, argument=argument)
            click.echo(
                f"redisched bridge: Redis at {redacted(redis_url)}, queue {settings.queue!r}"
            )
            asyncio.run(run_bridge(redis_url, settings, cluster=cluster, prefix=prefix))
            return
        with (
            claim_data_dir(data_dir) as folder,
            EmbeddedRedis(folder, tcp=False, die_with_owner=True) as server,
        ):
            click.echo(f"redisched bridge: embedded redis-server on {server.url}, data in {folder}")
            asyncio.run(run_bridge(server.url, settings, prefix=prefix))
    except InvalidArgument as exc:
        raise fail(exc, BridgeSettings, given) from exc
    except RedischedError as exc:
        raise click.ClickException(str(exc)) from exc


async def run_bridge(
    redis_url: str, settings: BridgeSettings, *, cluster: bool = False, prefix: str | None = None
) -> None:
    """Run one bridge on ``redis_url`` (a node of a Redis Cluster with ``cluster``), its keys
    under ``prefix`` (None: the default), until SIGTERM or SIGINT, then shut down cleanly."""
    from ..bridges.amqp import AmqpBridge
    from ..client import AsyncClient

    options: dict[str, str] = {} if prefix is None else {"prefix": prefix}
    async with AsyncClient.from_url(redis_url, cluster=cluster, **options) as client:
        runner = AmqpBridge(client, settings)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, runner.request_stop)
        try:
            await runner.run()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
