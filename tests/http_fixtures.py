"""The HTTP service in this process: an httpx client over ASGI, and the fixtures built on it.

``asgi_client(app)`` runs an app's lifespan and yields a client that talks to it without a
socket; the fixtures ``http`` (the API), ``web`` (the API with the dashboard) and ``py`` (the
Python client on the same Redis) are registered in ``conftest.py``. A test module that needs
other settings defines its own fixture of the same name over ``asgi_client``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

import redisched
from redisched.config import Settings
from redisched.dashboard import ENDPOINTS, ROUTES
from redisched.http import create_app


@contextlib.asynccontextmanager
async def asgi_client(
    app: Starlette, *, raise_app_exceptions: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """A client talking to ``app`` in this process, with the app's lifespan running."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield client


@pytest.fixture
async def http(redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to a fresh app in this process."""
    async with asgi_client(create_app(Settings(redis_url=redis_url, requeue_interval=0.05))) as c:
        yield c


@pytest.fixture
async def web(redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The API with the dashboard, in this process, on the session Redis."""
    app = create_app(Settings(redis_url=redis_url), extra_routes=ROUTES, extra_endpoints=ENDPOINTS)
    async with asgi_client(app) as client:
        yield client


@pytest.fixture
async def py(redis_url: str) -> AsyncIterator[redisched.AsyncClient]:
    """The Python client on the same Redis, to check what HTTP stored."""
    async with redisched.AsyncClient.from_url(redis_url) as client:
        yield client
