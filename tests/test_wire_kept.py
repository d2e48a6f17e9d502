"""Probes of the kept connections of redisched.wire (review)."""

from __future__ import annotations

import redis
import redis.asyncio

import redisched
from redisched.models import PutStatus


def test_a_limited_pool_still_serves_other_commands_after_a_script_call(
    redis_url: str, topic: str
) -> None:  # fmt: skip
    pool = redis.ConnectionPool.from_url(redis_url, max_connections=1)
    conn = redis.Redis(connection_pool=pool)
    client = redisched.Client(conn)
    try:
        assert client.put(topic, "a", b"x").status is PutStatus.CREATED
        assert client.get(topic, "a") is not None
        assert conn.ping()
    finally:
        client.close()
        pool.disconnect()


async def test_a_limited_async_pool_still_serves_other_commands_after_a_script_call(
    redis_url: str, topic: str
) -> None:  # fmt: skip
    pool = redis.asyncio.ConnectionPool.from_url(redis_url, max_connections=1)
    conn = redis.asyncio.Redis(connection_pool=pool)
    client = redisched.AsyncClient(conn)
    try:
        assert (await client.put(topic, "a", b"x")).status is PutStatus.CREATED
        assert await client.get(topic, "a") is not None
        assert await conn.ping()
    finally:
        await client.close()
        await pool.disconnect()  # a pool passed in is not closed with its client
