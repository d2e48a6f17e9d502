"""Service routes: ``/healthz``, ``/metrics`` and ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from redis.asyncio import RedisCluster
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
        problem = await _redis_problem(rt.client.redis)
    except (RedisError, OSError) as exc:
        problem = str(exc)
    if problem:
        return json_response(schemas.Health("unavailable", problem), 503)
    return json_response(schemas.Health("ok", "ok"))


async def _redis_problem(redis: Any) -> str | None:
    """Why Redis cannot serve every topic, or None. On a cluster a PING reaches one node, which
    answers while the cluster is down (``cluster_state:fail``) or a primary is gone: the state
    is read and every primary pinged."""
    if not isinstance(redis, RedisCluster):
        await redis.ping()
        return None
    state = (await redis.cluster_info()).get("cluster_state")
    if state != "ok":
        return f"the Redis Cluster's state is {state!r}"
    await redis.ping(target_nodes=RedisCluster.PRIMARIES)
    return None


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
