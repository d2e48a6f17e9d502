"""``redisched serve``: the API, push dispatcher, requeue sweep and dashboard in one process.

Without a Redis URL it runs an embedded redis-server with AOF persistence in ``--data-dir``
(see :mod:`redisched.embedded`), stops it on exit, and finds every job again on the next
start. A lock file in the data folder keeps two servers off one folder; a redis-server left
behind by a server that was killed (``kill -9``) is stopped before a new one starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib
import importlib.util
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import IO, Any

import click
from starlette.routing import BaseRoute

from ..config import Settings
from ..embedded import EmbeddedRedis
from ..errors import RedischedError
from ..http.dispatch_metrics import PrometheusDispatchMetrics
from ..http.dispatcher import Dispatcher
from ..http.endpoint import Endpoint
from ..http.runtime import Runtime, Service, ServiceFactory

log = logging.getLogger(__name__)
PIDFILE = "redis.pid"
LOCKFILE = "serve.lock"


class DataDirBusy(RedischedError):
    """Another ``redisched serve`` uses this data folder."""


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``data_dir`` (released by the OS even after ``kill -9``)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = (data_dir / LOCKFILE).open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataDirBusy(
                f"another redisched serve is using {data_dir}: stop it or pick --data-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()


def _alive_redis(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return b"redis-server" in cmdline and state != "Z"


def stop_stale_server(data_dir: Path, timeout: float = 10.0) -> None:
    """Stop a redis-server that a killed ``serve`` left running on ``data_dir``.

    Only call while holding :func:`data_dir_lock`: then no live server owns it.
    """
    pidfile = data_dir / PIDFILE
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    if not _alive_redis(pid):
        return
    log.warning("stopping the redis-server (pid %d) left running on %s", pid, data_dir)
    os.kill(pid, signal.SIGTERM)  # it writes its append-only file before exiting
    deadline = time.monotonic() + timeout
    while _alive_redis(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.02)


def dispatcher_service(rt: Runtime) -> Service:
    """The push dispatcher, reporting into the app's metrics registry."""
    dispatcher = Dispatcher(
        rt.client, rt.wakeups, rt.settings,
        metrics=PrometheusDispatchMetrics(rt.metrics.registry),
    )  # fmt: skip
    rt.topic_listeners.append(lambda _topic: dispatcher.request_refresh())
    return dispatcher


def amqp_service(amqp_url: str) -> ServiceFactory:
    """The AMQP bridge of ``--amqp-url`` (queue settings from ``REDISCHED_AMQP_*``), counting
    into the app's metrics registry."""

    def build(rt: Runtime) -> Service:
        from ..bridges.amqp import AmqpBridge, BridgeSettings
        from ..bridges.metrics import PrometheusMetrics

        return AmqpBridge(
            rt.client, BridgeSettings.from_env(amqp_url=amqp_url),
            metrics=PrometheusMetrics(rt.metrics.registry),
        )  # fmt: skip

    return build


def services() -> list[ServiceFactory]:
    """The background services of ``serve`` besides the requeue sweep: the push dispatcher."""
    return [dispatcher_service]


def dashboard() -> tuple[list[BaseRoute], list[Endpoint]]:
    """The dashboard's routes and endpoints, when ``redisched.dashboard`` provides them.

    The package may define ``ROUTES`` (Starlette routes served after the API's, such as the
    page at ``/`` and its static files) and ``ENDPOINTS`` (JSON operations, routed and
    documented in ``/openapi.json``); both are read once at startup.
    """
    if importlib.util.find_spec("redisched.dashboard") is None:
        return [], []
    module = importlib.import_module("redisched.dashboard")
    return list(getattr(module, "ROUTES", ())), list(getattr(module, "ENDPOINTS", ()))


def dashboard_open_paths() -> frozenset[str]:
    """Paths the dashboard serves without a token: its page shell and static files (no data)."""
    if importlib.util.find_spec("redisched.dashboard") is None:
        return frozenset()
    return frozenset(getattr(importlib.import_module("redisched.dashboard"), "OPEN_PATHS", ()))


def _server(settings: Settings, on_started: Callable[[], None], amqp_url: str | None = None) -> Any:
    import uvicorn

    from ..http import create_app

    routes, endpoints = dashboard()
    bridge = [amqp_service(amqp_url)] if amqp_url else []
    app = create_app(
        settings, extra_routes=routes, extra_endpoints=endpoints, services=[*services(), *bridge],
        open_paths=dashboard_open_paths(),
    )  # fmt: skip
    loops: list[asyncio.AbstractEventLoop] = []

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # Long polls answer at once, so the graceful shutdown does not wait for them.
            rt: Runtime | None = getattr(app.state, "runtime", None)
            if rt is not None and loops:
                loops[0].call_soon_threadsafe(rt.closing.set)
            super().handle_exit(sig, frame)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # As uvicorn's, minus raising the signal again on the way out: that would end
            # the process before the embedded redis-server is stopped.
            handled = (signal.SIGINT, signal.SIGTERM)
            original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

        async def startup(self, sockets: Any = None) -> None:
            loops.append(asyncio.get_running_loop())
            await super().startup(sockets)
            if self.started:
                on_started()

    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, loop="uvloop", http="httptools",
        lifespan="on", access_log=False, log_config=None, timeout_graceful_shutdown=10,
        server_header=False,
    )  # fmt: skip
    return Server(config)


def run(settings: Settings, amqp_url: str | None = None) -> None:
    """Run the service until SIGINT/SIGTERM, with an embedded Redis if no URL is set, and
    the AMQP bridge if ``amqp_url`` is given."""
    settings.check_exposure()
    with contextlib.ExitStack() as stack:
        where = f"Redis at {settings.redis_url}"
        if settings.redis_url is None:
            data_dir = settings.data_dir.resolve()
            stack.enter_context(data_dir_lock(data_dir))
            stop_stale_server(data_dir)
            embedded = EmbeddedRedis(
                data_dir,
                appendfsync=settings.appendfsync,
                extra_args=("--pidfile", str(data_dir / PIDFILE)),
            )
            stack.enter_context(embedded)
            settings = settings.with_changes(redis_url=embedded.url)
            where = (
                f"data in {data_dir} (embedded redis-server on {embedded.url}, "
                f"AOF appendfsync {settings.appendfsync})"
            )

        def started() -> None:
            click.echo(f"redisched listening on http://{_host(settings.host)}:{settings.port}")
            click.echo(f"redisched {where}")
            if not settings.tokens:
                click.echo("redisched API tokens: none (every client may use the API)")

        server = _server(settings, started, amqp_url)
        server.run()
        if not server.started:
            raise click.ClickException(
                f"could not listen on {settings.host}:{settings.port} (see the log above)"
            )


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


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
    "--token",
    "tokens",
    multiple=True,
    help="API token (repeatable). [env REDISCHED_API_TOKENS, comma-separated]",
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
@click.option("--verbose", "-v", is_flag=True, help="Log at DEBUG level.")
def serve(
    host: str | None, port: int | None, redis_url: str | None, redis_cluster: bool | None,
    durable_puts: bool | None, data_dir: Path | None, tokens: tuple[str, ...],
    insecure: bool | None, allow_private_webhooks: bool | None, allowed_hosts: tuple[str, ...],
    appendfsync: str | None, amqp_url: str | None, verbose: bool,
) -> None:  # fmt: skip
    """Serve the HTTP API, push dispatcher, requeue sweep and dashboard.

    A job that fails (or whose reservation times out) goes dead after max_attempts: the
    put's, else the topic's, else 25.
    """
    from ..cli import configure_logging

    configure_logging(verbose)
    if not verbose:
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    try:
        settings = Settings.from_env(
            host=host, port=port, redis_url=redis_url, redis_cluster=redis_cluster,
            durable_puts=durable_puts, data_dir=data_dir, tokens=tokens or None, insecure=insecure,
            allow_private_webhooks=allow_private_webhooks, appendfsync=appendfsync,
            allowed_hosts=allowed_hosts or None,
        )  # fmt: skip
        run(settings, amqp_url)
    except RedischedError as exc:
        raise click.ClickException(str(exc)) from exc
