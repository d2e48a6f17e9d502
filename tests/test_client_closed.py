"""A call on a closed Client or AsyncClient raises ClientClosed and sends nothing (redis-py
would silently reconnect)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

import redisched
from redisched import ClientClosed


def _topic() -> str:
    return f"closed-{uuid.uuid4().hex[:8]}"


def test_a_closed_client_refuses_every_call(redis_url: str) -> None:
    topic = _topic()
    with redisched.Client.from_url(redis_url) as client:
        client.put(topic, "before", b"x")
    calls = {
        "put": lambda: client.put(topic, "after", b"x"),
        "get": lambda: client.get(topic, "before"),
        "execute": lambda: client.execute(client.ops.stats(topic)),
        "delete_topic": lambda: client.delete_topic(topic),
    }
    for call in calls.values():
        with pytest.raises(ClientClosed, match="this Client is closed"):
            call()
    client.close()  # closing again is harmless
    with redisched.Client.from_url(redis_url) as fresh:
        assert fresh.get(topic, "after") is None
        assert fresh.get(topic, "before") is not None


async def test_a_closed_async_client_refuses_every_call(redis_url: str) -> None:
    topic = _topic()
    async with redisched.AsyncClient.from_url(redis_url) as client:
        await client.put(topic, "before", b"x")
    with pytest.raises(ClientClosed, match="this AsyncClient is closed"):
        await client.put(topic, "after", b"x")
    with pytest.raises(ClientClosed):
        await client.reserve(topic)
    with pytest.raises(ClientClosed):
        await client.purge(topic, "scheduled")
    await client.close()
    async with redisched.AsyncClient.from_url(redis_url) as fresh:
        assert await fresh.get(topic, "after") is None
        assert (await fresh.stats(topic)).ready == 1


def test_a_client_over_a_callers_connection_is_closed_too(redis_url: str) -> None:
    import redis

    connection = redis.Redis.from_url(redis_url)
    client = redisched.Client(connection)
    client.close()
    with pytest.raises(ClientClosed):
        client.put(_topic(), "j", b"x")
    connection.close()


async def test_a_close_during_calls_leaves_no_connection_open(
    redis_url: str, raw_redis: Any
) -> None:
    """Calls in flight when close() comes end with their result or ClientClosed (not a
    BackendError saying the server closed the connection), and none keeps a connection open
    past the close (one coming back to the closed client's pool or kept set stayed open)."""
    topic = _topic()
    own = raw_redis.client_id()
    before = {c["id"] for c in raw_redis.client_list()}
    client = redisched.AsyncClient.from_url(redis_url)
    await client.put(topic, "a", b"x")
    calls = [
        asyncio.ensure_future(call)
        for call in (
            client.jobs(topic, "ready"),
            client.put(topic, "b", b"y"),
            client.get(topic, "a"),
            client.stats(topic),
        )
    ]
    await asyncio.sleep(0)  # each is sending or waiting for its reply
    await client.close()
    for done in await asyncio.gather(*calls, return_exceptions=True):
        assert not isinstance(done, BaseException) or isinstance(done, ClientClosed), done
    await asyncio.sleep(0.05)
    left = {c["id"] for c in raw_redis.client_list()} - before - {str(own), own}
    assert not left, raw_redis.client_list()
