"""The ASGI app of ``redisched serve``: :func:`create_app` builds it from settings.

Everything the handlers share lives on ``app.state.runtime`` (see :mod:`.runtime`), created
by the lifespan; nothing is kept at module level. Other parts plug in without editing this
file: ``extra_routes`` adds Starlette routes (the dashboard mounts here; ``/`` is left free
for it), ``extra_endpoints`` adds documented operations, and ``services`` adds background
parts started and stopped with the app (the push dispatcher). The requeue sweep always runs.
At startup each process loads every script and reads the server's clock (its long-poll
reserves and dispatcher share it, see :mod:`redisched.warmup`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import logging
from collections.abc import AsyncIterator, Collection, Sequence

import msgspec
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route

from ..client import AsyncClient
from ..config import Settings
from ..errors import InvalidArgument
from ..wakeup import Wakeups
from ..warmup import warm_up_or_warn
from . import (
    openapi,
    routes_history,
    routes_jobs,
    routes_operate,
    routes_schedules,
    routes_seed,
    routes_service,
    routes_topics,
)
from .auth import OPEN_PATHS, BearerAuth
from .endpoint import Endpoint, query_checked
from .errors import exception_handlers
from .hotpath import HotRoutes
from .metrics import Metrics
from .paths import RawPathMiddleware
from .requeue import RequeueLoop
from .runtime import Runtime, Service, ServiceFactory
from .sameorigin import SameOriginGuard
from .throughput import ThroughputSampler

log = logging.getLogger(__name__)

ENDPOINTS: tuple[Endpoint, ...] = (
    *routes_jobs.ENDPOINTS,
    *routes_topics.ENDPOINTS,
    *routes_operate.ENDPOINTS,
    *routes_history.ENDPOINTS,
    *routes_schedules.ENDPOINTS,
    *routes_seed.ENDPOINTS,
    *routes_service.ENDPOINTS,
)
"""Every operation of the API, in document order."""

HOT_PATHS = frozenset(
    {
        "/v1/topics/{topic}/jobs/{id}",
        "/v1/topics/{topic}/reserve",
        "/v1/topics/{topic}/jobs/{id}/ack",
    }
)
"""Served by :class:`~.hotpath.HotRoutes` in front of the middleware, and routed first by the
router (for the requests that take the long way)."""


def _version() -> str:
    try:
        return importlib.metadata.version("redisched")
    except importlib.metadata.PackageNotFoundError:
        return "0"


def create_app(
    settings: Settings,
    *,
    extra_routes: Sequence[BaseRoute] = (),
    extra_endpoints: Sequence[Endpoint] = (),
    services: Sequence[ServiceFactory] = (),
    open_paths: Collection[str] = (),
    extra_middleware: Sequence[Middleware] = (),
    background: bool = True,
) -> Starlette:
    """Build the API app.

    Args:
        settings: the service settings; ``redis_url`` must be set (``serve`` sets it to the
            embedded server's when none is given).
        extra_routes: Starlette routes served after the API's (e.g. the dashboard at ``/``).
        extra_endpoints: more operations, routed and documented in ``/openapi.json``.
        services: factories of background services, each given the app's Runtime at
            startup; started in order after the requeue sweep, stopped in reverse.
        open_paths: more paths served without a token, for pages that hold no data (the
            dashboard's page shell and static files, which then ask for the token).
        extra_middleware: more middleware, outermost first, around the API's own.
        background: run the requeue sweep, the throughput sampler and ``services``; False
            serves the API only (the extra worker processes of ``serve --workers``, whose
            first process runs them once for all).
    """
    if not settings.redis_url:
        raise InvalidArgument("redis_url", "create_app needs a Redis URL")
    redis_url = settings.redis_url
    endpoints = (*ENDPOINTS, *extra_endpoints)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        client = AsyncClient.from_url(
            redis_url, cluster=settings.redis_cluster, durable=settings.durable_puts,
            prefix=settings.prefix, max_body_size=settings.max_body_size,
        )  # fmt: skip
        wakeups = Wakeups(client.redis, settings.prefix)
        rt = Runtime(settings, client, wakeups, Metrics(settings.metrics_topics))
        app.state.runtime = rt
        started: list[Service] = rt.services
        try:
            # Every process: its reserves and dispatcher lease on this clock. A Redis down at
            # start is only logged, as the background loops' failures are.
            await warm_up_or_warn(client, rt.clock, "the HTTP service")
            # The background loops run in one TaskGroup: none outlives the app. They keep
            # their own errors (``/healthz`` names a loop that died), so the group never
            # cancels the lifespan.
            async with asyncio.TaskGroup() as loops:
                try:
                    factories: tuple[ServiceFactory, ...] = (
                        lambda r: RequeueLoop(r.client, settings.requeue_interval, loops),
                        lambda r: ThroughputSampler(r.client, group=loops),
                        *services,
                    )
                    for factory in factories if background else ():
                        service = factory(rt)
                        await service.start()
                        started.append(service)
                    yield
                finally:
                    rt.closing.set()
                    for service in reversed(started):
                        try:
                            await service.stop()
                        except Exception:
                            log.exception("stopping %r failed", service)
        finally:
            await rt.wakeups.close()
            await client.close()

    routes: list[BaseRoute] = [
        Route(e.path, query_checked(e), methods=[e.method], name=e.handler.__name__)
        for e in sorted(endpoints, key=lambda e: e.path not in HOT_PATHS)  # stable: hot first
    ]
    routes += extra_routes
    allowed_hosts = (*settings.allowed_hosts, settings.host)
    unguarded = OPEN_PATHS | frozenset(open_paths)
    handlers = exception_handlers()
    hot = [r for r in routes if isinstance(r, Route) and r.path in HOT_PATHS]
    middleware = [
        *extra_middleware,
        Middleware(
            HotRoutes, routes=hot, allowed_hosts=allowed_hosts, tokens=settings.tokens,
            open_paths=unguarded, handlers=handlers,
        ),
        Middleware(SameOriginGuard, allowed_hosts=allowed_hosts),
        Middleware(RawPathMiddleware),
    ]  # fmt: skip
    if settings.tokens:
        middleware.append(Middleware(BearerAuth, tokens=settings.tokens, open_paths=unguarded))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=handlers,
        lifespan=lifespan,
    )
    # A path with a slash too many is a JSON 404 like any unknown path, not a bodiless 307
    # to the path without it (which a client then has to follow with its body again).
    app.router.redirect_slashes = False
    document = openapi.document(
        endpoints, version=_version(), secured=bool(settings.tokens), open_paths=OPEN_PATHS
    )
    app.state.openapi = msgspec.json.encode(document)
    app.state.settings = settings
    return app
