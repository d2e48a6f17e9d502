"""Service routes: ``/healthz``, ``/metrics`` and ``/openapi.json``."""

from __future__ import annotations

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from . import schemas
from .endpoint import Endpoint, json_response
from .metrics import CONTENT_TYPE
from .runtime import runtime


async def healthz(request: Request) -> Response:
    """GET /healthz: 200 when Redis answers and every background loop runs, else 503.

    Never needs a token.
    """
    rt = runtime(request)
    failures = rt.failures()
    if failures:
        return json_response(schemas.Health("unavailable", "; ".join(failures)), 503)
    try:
        await rt.client.redis.ping()
    except (RedisError, OSError) as exc:
        return json_response(schemas.Health("unavailable", str(exc)), 503)
    return json_response(schemas.Health("ok", "ok"))


async def metrics(request: Request) -> Response:
    """GET /metrics: Prometheus exposition."""
    rt = runtime(request)
    return Response(await rt.metrics.render(rt.client), 200, media_type=CONTENT_TYPE)


async def openapi(request: Request) -> Response:
    """GET /openapi.json."""
    body: bytes = request.app.state.openapi
    return Response(body, 200, media_type="application/json")


ENDPOINTS = (
    Endpoint(
        "GET", "/healthz", healthz, "Liveness and Redis reachability",
        responses={200: schemas.Health, 503: schemas.Health}, tag="service",
    ),
    Endpoint(
        "GET", "/metrics", metrics, "Prometheus metrics", responses={200: CONTENT_TYPE},
        tag="service",
    ),
    Endpoint(
        "GET", "/openapi.json", openapi, "This document", responses={200: "application/json"},
        tag="service",
    ),
)  # fmt: skip
"""The service routes."""
