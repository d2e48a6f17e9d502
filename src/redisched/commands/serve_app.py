"""The app ``redisched serve`` runs: the API with the dashboard, push dispatcher and bridge."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from ..config import Settings
from ..http.endpoint import Endpoint
from ..http.runtime import Runtime, Service, ServiceFactory
from ..push.dispatch_metrics import PrometheusDispatchMetrics
from ..push.dispatcher import Dispatcher


def dispatcher_service(rt: Runtime) -> Service:
    """The push dispatcher, reporting into the app's metrics registry, on the app's server
    clock (read at startup with the scripts loaded: the dispatcher need not do it again)."""
    dispatcher = Dispatcher(
        rt.client, rt.wakeups, rt.settings,
        metrics=PrometheusDispatchMetrics(rt.metrics.registry), clock=rt.clock,
    )  # fmt: skip
    rt.topic_listeners.append(lambda _topic: dispatcher.request_refresh())
    dispatcher.held = rt.held  # the dashboard shows held topics
    return dispatcher


def amqp_service(amqp_url: str, queue: str | None = None) -> ServiceFactory:
    """The AMQP bridge of ``--amqp-url`` and ``--amqp-queue`` (other queue settings from
    ``REDISCHED_AMQP_*``), counting into the app's metrics registry."""

    def build(rt: Runtime) -> Service:
        from ..bridges.amqp import AmqpBridge, BridgeSettings
        from ..bridges.metrics import PrometheusMetrics

        return AmqpBridge(
            rt.client, BridgeSettings.from_env(None, amqp_url=amqp_url, queue=queue or None),
            metrics=PrometheusMetrics(rt.metrics.registry),
        )  # fmt: skip

    return build


def services() -> list[ServiceFactory]:
    """The background services of ``serve`` besides the requeue sweep: the push dispatcher."""
    return [dispatcher_service]


def _dashboard(name: str) -> list[Any]:
    """The ``redisched.dashboard`` package's ``name`` (an empty list without the package)."""
    if importlib.util.find_spec("redisched.dashboard") is None:
        return []
    return list(getattr(importlib.import_module("redisched.dashboard"), name, ()))


def dashboard() -> tuple[list[BaseRoute], list[Endpoint]]:
    """The dashboard's routes and endpoints, when ``redisched.dashboard`` provides them.

    The package may define ``ROUTES`` (Starlette routes served after the API's, such as the
    page at ``/`` and its static files) and ``ENDPOINTS`` (JSON operations, routed and
    documented in ``/openapi.json``); both are read once at startup.
    """
    return _dashboard("ROUTES"), _dashboard("ENDPOINTS")


def dashboard_open_paths() -> frozenset[str]:
    """Paths the dashboard serves without a token: its page shell and static files (no data)."""
    return frozenset(_dashboard("OPEN_PATHS"))


def dashboard_middleware() -> list[Any]:
    """The dashboard's middleware (see :mod:`redisched.dashboard.soft`), if it is installed."""
    return _dashboard("MIDDLEWARE")


def build_app(
    settings: Settings, amqp_url: str | None = None, amqp_queue: str | None = None,
    *, background: bool = True,
) -> Starlette:  # fmt: skip
    """The whole service's app; with ``amqp_url`` the AMQP bridge runs in it too. Without
    ``background`` it serves the API and dashboard only (an extra ``--workers`` process)."""
    from ..http import create_app

    routes, endpoints = dashboard()
    bridge = [amqp_service(amqp_url, amqp_queue)] if amqp_url else []
    return create_app(
        settings, extra_routes=routes, extra_endpoints=endpoints, services=[*services(), *bridge],
        open_paths=dashboard_open_paths(), extra_middleware=dashboard_middleware(),
        background=background,
    )  # fmt: skip
