"""``redisched serve``: the API, push dispatcher, requeue sweep and dashboard in one process.

Without a Redis URL it runs an embedded redis-server with AOF persistence in ``--data-dir``
(see :mod:`redisched.embedded`), restarts it if it dies (:mod:`redisched.supervisor`), stops
it on exit, and finds every job again on the next start. Running is :mod:`.serve_run`'s job;
this module is the command line only.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

from ..errors import InvalidArgument, RedischedError


@click.command()
@click.option("--host", help="Address to listen on. [env REDISCHED_HOST; default 127.0.0.1]")
@click.option("--port", type=int, help="Port to listen on. [env REDISCHED_PORT; default 7171]")
@click.option(
    "--redis-url", help="Redis to use; none starts an embedded one. [env REDISCHED_REDIS_URL]"
)
@click.option(
    "--redis-cluster",
    is_flag=True,
    default=None,
    help="--redis-url is a node of a Redis Cluster. [env REDISCHED_REDIS_CLUSTER]",
)
@click.option(
    "--durable-puts",
    is_flag=True,
    default=None,
    help="Every put waits for a replica (WAIT). [env REDISCHED_DURABLE_PUTS]",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Embedded Redis data folder. [env REDISCHED_DATA_DIR; default ./redisched-data]",
)
@click.option(
    "--redis-port",
    type=int,
    help="Embedded Redis TCP port on 127.0.0.1 (it also listens on <data-dir>/redis.sock). "
    "[env REDISCHED_REDIS_PORT; default: a free port]",
)
@click.option(
    "--token",
    "tokens",
    multiple=True,
    help="API token, at least 16 characters (repeatable). [env REDISCHED_API_TOKENS, "
    "comma-separated]",
)
@click.option(
    "--insecure",
    is_flag=True,
    default=None,
    help="Allow a non-loopback --host without tokens. [env REDISCHED_INSECURE]",
)
@click.option(
    "--allow-private-webhooks",
    is_flag=True,
    default=None,
    help="Let webhooks reach private/loopback addresses. [env REDISCHED_ALLOW_PRIVATE_WEBHOOKS]",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    help="A host name the API answers for besides IPs, localhost and --host (repeatable; * "
    "for any). Others get 400 (DNS rebinding). [env REDISCHED_ALLOWED_HOSTS]",
)
@click.option(
    "--appendfsync",
    type=click.Choice(["everysec", "always"]),
    help="Embedded Redis AOF fsync policy. [env REDISCHED_APPENDFSYNC; default everysec]",
)
@click.option(
    "--amqp-url",
    envvar="REDISCHED_AMQP_URL",
    help="Also run the AMQP bridge (see `bridge amqp`). [env REDISCHED_AMQP_URL]",
)
@click.option(
    "--amqp-queue",
    envvar="REDISCHED_AMQP_QUEUE",
    help="The bridge's queue. [env REDISCHED_AMQP_QUEUE; default redisched]",
)
@click.option("--verbose", "-v", is_flag=True, help="Log at DEBUG level.")
def serve(
    host: str | None, port: int | None, redis_url: str | None, redis_cluster: bool | None,
    durable_puts: bool | None, data_dir: Path | None, redis_port: int | None,
    tokens: tuple[str, ...], insecure: bool | None, allow_private_webhooks: bool | None,
    allowed_hosts: tuple[str, ...], appendfsync: str | None, amqp_url: str | None,
    amqp_queue: str | None, verbose: bool,
) -> None:  # fmt: skip
    """Serve the HTTP API, push dispatcher, requeue sweep and dashboard.

    Without --redis-url, an embedded redis-server keeps its data in --data-dir, is restarted
    if it dies (serve exits with status 1 if it cannot come back) and is stopped with serve.
    A job that fails (or whose reservation times out) goes dead after max_attempts: the
    put's, else the topic's, else 25.
    """
    from ..cli import configure_logging
    from ..config import Settings
    from .serve_run import run

    configure_logging(verbose)
    if not verbose:
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    try:
        settings = Settings.from_env(
            host=host, port=port, redis_url=redis_url, redis_cluster=redis_cluster,
            durable_puts=durable_puts, data_dir=data_dir, redis_port=redis_port,
            tokens=tokens or None, insecure=insecure,
            allow_private_webhooks=allow_private_webhooks, appendfsync=appendfsync,
            allowed_hosts=allowed_hosts or None,
        )  # fmt: skip
        run(settings, amqp_url, amqp_queue)
    except InvalidArgument as exc:
        raise click.ClickException(f"{option_name(exc.argument)}: {exc.message}") from exc
    except RedischedError as exc:
        raise click.ClickException(str(exc)) from exc


def option_name(argument: str) -> str:
    """The option of a setting named in an error (``redis_url`` -> ``--redis-url``); other
    names (``--redis-url``, ``REDISCHED_PORT``) as they are."""
    from dataclasses import fields

    from ..config import Settings

    if argument == "tokens":
        return "--token"
    if argument in {f.name for f in fields(Settings)}:
        return "--" + argument.replace("_", "-")
    return argument
