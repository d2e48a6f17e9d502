"""``redisched worker MODULE:FUNC --topic T``: run a handler for a topic's jobs until SIGTERM."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import click

from ..cli import configure_logging
from ..config import redis_url_argument
from ..errors import InvalidArgument
from ..worker_settings import WorkerSettings
from .options import chosen, fail, options


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
@options(WorkerSettings)
@click.option("--verbose", "-v", is_flag=True, help="Log at DEBUG level.")
def worker(handler: str, verbose: bool, **given: Any) -> None:
    """Run HANDLER (module.path:function) for the jobs of each --topic.

    An async function runs on the event loop, a plain one in a thread pool. Returning acks
    the job; raising releases it for a retry with backoff (raise redisched.Retry(delay=...)
    to choose the delay); after its max_attempts (the put's, else the topic's, else 25) the
    job goes dead with the error kept. SIGTERM or SIGINT stops gracefully: running handlers
    get --grace seconds, then unfinished jobs are released and the process exits (a handler
    still running a second after its cancellation is left behind). Exit status 0 after a
    graceful stop.
    """
    from ..errors import RedischedError
    from ..keys import validate_topic
    from ..preflight import check_redis
    from ..retry import Backoff, TopicBackoff

    configure_logging(verbose)
    try:
        settings = WorkerSettings.from_env(**chosen(given))
    except InvalidArgument as exc:
        raise fail(exc, WorkerSettings, given) from exc
    # REDISCHED_TOPIC is split at spaces when read; each --topic is one topic, spaces and all
    names = [name for name in settings.topics if name.strip()]
    if not names:  # none given, or only blank ones (-t '' named no option but "handlers")
        raise click.UsageError("Missing option '--topic' / '-t' (or REDISCHED_TOPIC).")
    sys.path.insert(0, str(settings.app_dir.resolve()))
    function = load_handler(handler)
    backoff, backoff_max = settings.backoff, settings.backoff_max
    try:
        for name in names:
            validate_topic(name, "--topic")
    except RedischedError as exc:
        raise click.BadParameter(str(exc)) from exc
    if backoff is not None and backoff_max is not None and backoff_max < backoff:
        raise click.BadParameter(
            f"must be at least --backoff ({backoff:g})", param_hint="--backoff-max"
        )
    policy: Backoff | TopicBackoff = (  # one left out (None): each topic's setting
        TopicBackoff(backoff, backoff_max)
        if backoff is None or backoff_max is None
        else Backoff(backoff, backoff_max)
    )
    try:  # fail fast on a bad URL or a Redis that does not answer; ride out outages later
        argument = redis_url_argument(given.get("redis_url"))
        check_redis(settings.redis_url, cluster=settings.redis_cluster, argument=argument)
    except InvalidArgument as exc:
        raise click.ClickException(f"{exc.argument}: {exc.message}") from exc
    except RedischedError as exc:
        raise click.ClickException(str(exc)) from exc
    _run(_serve(function, names, settings, policy))


async def _serve(
    function: Callable[..., Any], topics: list[str], settings: WorkerSettings, backoff: Any
) -> None:
    from ..client import AsyncClient
    from ..worker import Worker

    runner: Worker | None = None
    try:
        async with AsyncClient.from_url(
            settings.redis_url, cluster=settings.redis_cluster, prefix=settings.prefix
        ) as client:
            runner = Worker(
                client, dict.fromkeys(topics, function), concurrency=settings.concurrency,
                ttr=settings.ttr, backoff=backoff, grace=settings.grace,
            )  # fmt: skip
            await runner.run()
    except (SystemExit, KeyboardInterrupt) as exc:  # a handler's, raised once the Worker stopped
        if runner is not None and runner.abandoned:
            _exit_leaving(runner.abandoned, _status_of(exc))
        raise
    assert runner is not None
    if runner.abandoned:
        _exit_leaving(runner.abandoned, 0)


def _status_of(exc: SystemExit | KeyboardInterrupt) -> int:
    """The exit status the interpreter gives ``exc``: SystemExit's code, 1 for an interrupt
    (as click reports an Abort) or a code that is no number."""
    if isinstance(exc, SystemExit) and (exc.code is None or isinstance(exc.code, int)):
        return exc.code or 0
    return 1


def _exit_leaving(abandoned: int, status: int) -> None:
    """Exit now with ``status``. Handlers that ignored their cancellation: asyncio.run would
    wait for their tasks and the interpreter for their threads, forever for one that never
    returns. Their jobs were released; the process exits now, as the grace period promises."""
    logging.getLogger(__name__).warning("exiting without waiting for %d handlers left behind",
                                        abandoned)  # fmt: skip
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
