"""The job routes served in front of the middleware (HotRoutes) keep every check of the stack.

The topics here are plain names: an escaped path (``%``) goes the long way, so these tests are
the ones that exercise the short one; the stack below HotRoutes records what reaches it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from redisched.config import Settings
from redisched.http.app import create_app
from redisched.http.hotpath import HotRoutes

TOKEN = "hot-token-0123456789"


@pytest.fixture
def plain_topic() -> str:
    """A topic whose name needs no escaping in a URL."""
    return f"hot-{uuid.uuid4().hex[:12]}"


async def _open(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, list[str]]]:
    """A client on a fresh app whose stack below HotRoutes records the paths it serves."""
    app = create_app(settings)
    stack = app.build_middleware_stack()
    layer: Any = stack
    while not isinstance(layer, HotRoutes):
        layer = layer.app
    inner, long_way = layer.app, []

    async def recording(scope: Scope, receive: Receive, send: Send) -> None:
        long_way.append(scope["path"])
        await inner(scope, receive, send)

    layer.app = recording
    app.middleware_stack = stack
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            yield http, long_way


@pytest.fixture
async def open_api(redis_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, list[str]]]:
    async for pair in _open(Settings(redis_url=redis_url)):
        yield pair


@pytest.fixture
async def guarded_api(redis_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, list[str]]]:
    async for pair in _open(Settings(redis_url=redis_url, tokens=(TOKEN,))):
        yield pair


async def test_put_get_reserve_and_ack_are_served_directly(
    open_api: tuple[httpx.AsyncClient, list[str]], plain_topic: str
) -> None:
    http, long_way = open_api
    url = f"/v1/topics/{plain_topic}/jobs/j1"
    created = await http.put(url, json={"body": {"n": 1}, "priority": 2})
    assert created.status_code == 201 and created.headers["etag"] == '"1"'
    assert created.json()["body"] == {"n": 1} and created.json()["state"] == "ready"
    assert created.json() == (await http.get(url)).json()
    replaced = await http.put(url, json={"body": "two", "delay": 60})
    assert replaced.status_code == 200 and replaced.json()["state"] == "scheduled"
    assert replaced.json() == (await http.get(url)).json()
    await http.put(f"/v1/topics/{plain_topic}/jobs/j2", json={"body": 2})
    leased = await http.post(f"/v1/topics/{plain_topic}/reserve", json={"count": 1})
    assert leased.status_code == 200 and leased.json()["jobs"][0]["id"] == "j2"
    token = leased.json()["jobs"][0]["token"]
    pending = await http.put(f"/v1/topics/{plain_topic}/jobs/j2", json={"body": 3})
    assert pending.status_code == 202 and pending.json()["state"] == "reserved"
    acked = await http.post(f"/v1/topics/{plain_topic}/jobs/j2/ack", json={"token": token})
    assert acked.status_code == 204
    assert (await http.get(f"/v1/topics/{plain_topic}/jobs/j2")).json()["version"] == 2
    assert long_way == []


async def test_errors_map_as_on_the_long_way(
    open_api: tuple[httpx.AsyncClient, list[str]], plain_topic: str
) -> None:
    http, long_way = open_api
    url = f"/v1/topics/{plain_topic}/jobs/j"
    malformed = await http.put(url, content=b"{", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed_json"
    bad = await http.put(url, json={"body": 1, "priority": "high"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "priority"
    await http.put(url, json={"body": 1})
    stale = await http.put(url, json={"body": 2}, headers={"If-Match": '"7"'})
    assert stale.status_code == 412
    exists = await http.put(url, json={"body": 2}, headers={"If-None-Match": "*"})
    assert exists.status_code == 412 and exists.json()["error"]["code"] == "exists"
    assert long_way == []


async def test_escaped_paths_and_other_routes_take_the_long_way(
    open_api: tuple[httpx.AsyncClient, list[str]], plain_topic: str
) -> None:
    http, long_way = open_api
    put = await http.put(f"/v1/topics/{plain_topic}/jobs/a%2Fb", json={"body": 1})
    assert put.status_code == 201 and put.json()["id"] == "a/b"
    assert (await http.get(f"/v1/topics/{plain_topic}")).status_code == 200
    assert long_way == [f"/v1/topics/{plain_topic}/jobs/a/b", f"/v1/topics/{plain_topic}"]


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Host": "attacker.example"}, 400, "bad_host"),
        ({"Origin": "http://attacker.example"}, 403, "cross_site"),
        ({"Sec-Fetch-Site": "cross-site"}, 403, "cross_site"),
    ],
)
async def test_the_same_origin_guard_applies(
    open_api: tuple[httpx.AsyncClient, list[str]],
    plain_topic: str,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    http, long_way = open_api
    put = await http.put(f"/v1/topics/{plain_topic}/jobs/j", json={"body": 1}, headers=headers)
    reserve = await http.post(f"/v1/topics/{plain_topic}/reserve", json={}, headers=headers)
    for reply in (put, reserve):
        assert reply.status_code == status and reply.json()["error"]["code"] == code
    assert (await http.get(f"/v1/topics/{plain_topic}/jobs/j")).status_code == 404
    assert long_way == []


async def test_the_token_check_applies(
    guarded_api: tuple[httpx.AsyncClient, list[str]], plain_topic: str
) -> None:
    http, long_way = guarded_api
    url = f"/v1/topics/{plain_topic}/jobs/j"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        denied = await http.put(url, json={"body": 1}, headers=headers)
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "unauthorized"
        assert denied.headers["www-authenticate"].startswith("Bearer")
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert (await http.put(url, json={"body": 1}, headers=good)).status_code == 201
    assert (await http.get(url, headers=good)).status_code == 200
    assert long_way == []


async def test_paths_that_fit_no_route_take_the_long_way(
    open_api: tuple[httpx.AsyncClient, list[str]], plain_topic: str
) -> None:
    """An empty segment, a trailing slash or an extra segment is not a job route's path."""
    http, long_way = open_api
    paths = [
        f"/v1/topics/{plain_topic}/jobs/",
        f"/v1/topics/{plain_topic}/jobs/j/",
        f"/v1/topics/{plain_topic}/jobs/j/x/ack",
        f"/v1/topics/{plain_topic}/reserve/",
    ]
    for path in paths:
        assert (await http.put(path, json={"body": 1})).status_code in (307, 404, 405)
    assert (await http.post(f"/v1/topics/{plain_topic}/jobs/j/nope", json={})).status_code == 404
    assert long_way == [*paths, f"/v1/topics/{plain_topic}/jobs/j/nope"]
