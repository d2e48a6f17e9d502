"""``redisched worker MODULE:FUNC --topic T``: run a handler for a topic's jobs until SIGTERM."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import click

from ..cli import DEFAULT_URL, configure_logging


def load_handler(spec: str) -> Callable[..., Any]:
    """The callable named by ``module.path:attribute`` (the attribute may be dotted).

    Raises:
        click.BadParameter: naming what could not be found.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise click.BadParameter("must look like module.path:function", param_hint="HANDLER")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(
            f"cannot import {module_name!r}: {exc}", param_hint="HANDLER"
        ) from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise click.BadParameter(
                f"{module_name!r} has no attribute {attribute!r}", param_hint="HANDLER"
            ) from None
    if not callable(target):
        raise click.BadParameter(f"{spec!r} is not callable", param_hint="HANDLER")
    return target  # type: ignore[no-any-return]


def _run(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


@click.command()
@click.argument("handler", envvar="REDISCHED_HANDLER")
@click.option(
    "--topic", "-t", "topics", multiple=True, required=True, envvar="REDISCHED_TOPIC",
    help="A topic to serve (repeat for several; REDISCHED_TOPIC takes them space-separated).",
)  # fmt: skip
@click.option(
    "--redis-url", envvar="REDISCHED_REDIS_URL", default=DEFAULT_URL, show_default=True,
    help="Redis to work on.",
)  # fmt: skip
@click.option(
    "--redis-cluster", envvar="REDISCHED_REDIS_CLUSTER", is_flag=True,
    help="--redis-url is a node of a Redis Cluster.",
)  # fmt: skip
@click.option("--prefix", envvar="REDISCHED_PREFIX", default="redisched", show_default=True)
@click.option(
    "--concurrency", "-c", envvar="REDISCHED_CONCURRENCY", type=click.IntRange(1, 10_000),
    default=50, show_default=True, help="Handlers running at once.",
)  # fmt: skip
@click.option(
    "--ttr", envvar="REDISCHED_TTR", type=click.FloatRange(0.001, min_open=False),
    help="Seconds each lease lasts  [default: each job's ttr]",
)  # fmt: skip
@click.option(
    "--grace", envvar="REDISCHED_GRACE", type=click.FloatRange(0), default=30.0,
    show_default=True, help="Seconds running handlers get to finish on SIGTERM.",
)  # fmt: skip
@click.option(
    "--backoff", envvar="REDISCHED_BACKOFF", type=click.FloatRange(0),
    help="Seconds before the first retry, doubled per attempt  [default: the topic's, else 1]",
)  # fmt: skip
@click.option(
    "--backoff-max", envvar="REDISCHED_BACKOFF_MAX", type=click.FloatRange(0),
    help="The longest retry delay, seconds  [default: the topic's, else 3600]",
)  # fmt: skip
@click.option(
    "--app-dir", envvar="REDISCHED_APP_DIR", default=".", show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder added to the import path before loading HANDLER.",
)  # fmt: skip
@click.option("--verbose", "-v", is_flag=True, help="Log at DEBUG level.")
def worker(
    handler: str, topics: tuple[str, ...], redis_url: str, redis_cluster: bool, prefix: str,
    concurrency: int,
    ttr: float | None, grace: float, backoff: float | None, backoff_max: float | None,
    app_dir: Path, verbose: bool,
) -> None:  # fmt: skip
    """Run HANDLER (module.path:function) for the jobs of each --topic.

    An async function runs on the event loop, a plain one in a thread pool. Returning acks
    the job; raising releases it for a retry with backoff (raise redisched.Retry(delay=...)
    to choose the delay); after its max_attempts (the put's, else the topic's, else 25) the
    job goes dead with the error kept. SIGTERM or SIGINT stops gracefully: running handlers
    get --grace seconds, then unfinished jobs are released. Exit status 0 after a graceful stop.
    """
    from ..errors import InvalidArgument, RedischedError
    from ..keys import validate_topic
    from ..preflight import check_redis
    from ..retry import Backoff

    configure_logging(verbose)
    sys.path.insert(0, str(app_dir.resolve()))
    function = load_handler(handler)
    names = [name for value in topics for name in value.split()]
    try:
        for name in names:
            validate_topic(name, "--topic")
        policy = None
        if backoff is not None or backoff_max is not None:
            base = 1.0 if backoff is None else backoff
            policy = Backoff(base, max(base, 3600.0) if backoff_max is None else backoff_max)
    except RedischedError as exc:
        raise click.BadParameter(str(exc)) from exc
    try:  # fail fast on a bad URL or a Redis that does not answer; ride out outages later
        check_redis(redis_url, cluster=redis_cluster)
    except InvalidArgument as exc:
        raise click.ClickException(f"{exc.argument}: {exc.message}") from exc
    except RedischedError as exc:
        raise click.ClickException(str(exc)) from exc
    _run(_serve(function, names, redis_url, redis_cluster, prefix, concurrency, ttr, grace, policy))


async def _serve(
    function: Callable[..., Any], topics: list[str], redis_url: str, cluster: bool, prefix: str,
    concurrency: int, ttr: float | None, grace: float, backoff: Any,
) -> None:  # fmt: skip
    from ..client import AsyncClient
    from ..worker import Worker

    async with AsyncClient.from_url(redis_url, cluster=cluster, prefix=prefix) as client:
        runner = Worker(
            client, dict.fromkeys(topics, function), concurrency=concurrency, ttr=ttr,
            backoff=backoff, grace=grace,
        )  # fmt: skip
        await runner.run()
