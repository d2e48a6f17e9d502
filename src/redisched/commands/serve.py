"""``redisched serve``: the API, push dispatcher, requeue sweep and dashboard in one process.

Without a Redis URL it runs an embedded redis-server with AOF persistence in ``--data-dir``
(see :mod:`redisched.embedded`), restarts it if it dies (:mod:`redisched.supervisor`), stops
it on exit, and finds every job again on the next start. Running is :mod:`.serve_run`'s job;
this module is the command line only.
"""

from __future__ import annotations

import logging
from typing import Any

import click

from ..bridges import settings as BridgeSpecs
from ..config import Settings, redis_url_argument
from ..errors import InvalidArgument, RedischedError
from ..setting import default, env_value
from .options import chosen, fail, option, options


@click.command()
@options(Settings)
@option(
    "amqp_url", BridgeSpecs.AMQP_URL, None,
    help="Also run the AMQP bridge (see `bridge amqp`).",
)  # fmt: skip
@option(
    "amqp_queue", BridgeSpecs.AMQP_QUEUE_OPTION, default(BridgeSpecs.BridgeSettings, "queue"),
    help="The bridge's queue.",
)  # fmt: skip
@click.option("--verbose", "-v", is_flag=True, help="Log at DEBUG level.")
def serve(amqp_url: str | None, amqp_queue: str | None, verbose: bool, **given: Any) -> None:
    """Serve the HTTP API, push dispatcher, requeue sweep and dashboard.

    Without --redis-url, an embedded redis-server keeps its data in --data-dir, is restarted
    if it dies (serve exits with status 1 if it cannot come back) and is stopped with serve.
    A job that fails (or whose reservation times out) goes dead after max_attempts: the
    put's, else the topic's, else 25.
    """
    from ..cli import configure_logging

    try:
        from .serve_run import run
    except ModuleNotFoundError as exc:  # `pip install redisched` alone: no web framework
        raise click.ClickException(
            f"serve needs the server extra (no module {exc.name!r}): "
            "pip install 'redisched[server]'"
        ) from exc

    configure_logging(verbose)
    if not verbose:
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    try:
        settings = Settings.from_env(**chosen(given))
        bridge_options = {"amqp_url": amqp_url, "queue": amqp_queue}
        if amqp_url is None:  # the bridge runs only when asked for, by option or variable
            amqp_url = env_value(BridgeSpecs.AMQP_URL)
        if amqp_url is not None:  # its settings refused now, in one line, not as the app starts
            try:  # (from_env names a refused variable itself)
                BridgeSpecs.BridgeSettings.from_env(**chosen(bridge_options))
            except InvalidArgument as exc:
                raise fail(exc, BridgeSpecs.BridgeSettings, bridge_options) from exc
            try:  # the bridge's broker library, before any Redis is started
                import aio_pika  # noqa: F401
            except ModuleNotFoundError as exc:
                raise click.ClickException(
                    f"--amqp-url needs the amqp extra (no module {exc.name!r}): "
                    "pip install 'redisched[amqp]'"
                ) from exc
        run(settings, amqp_url, amqp_queue, redis_url_argument(given.get("redis_url")))
    except InvalidArgument as exc:
        raise fail(exc, Settings, given) from exc
    except RedischedError as exc:
        raise click.ClickException(str(exc)) from exc
