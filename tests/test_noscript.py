"""A server that lost its script cache (restart, failover) gets the scripts again by itself."""

from __future__ import annotations

import redis


async def test_script_flush_is_recovered(api: object, topic: str, raw_redis: redis.Redis) -> None:
    client = api
    await client.put(topic, "a", b"1")  # type: ignore[attr-defined]
    raw_redis.script_flush()
    assert (await client.get(topic, "a")).body == b"1"  # type: ignore[attr-defined]
    raw_redis.script_flush()
    jobs = await client.reserve_many(topic, 1)  # type: ignore[attr-defined]
    raw_redis.script_flush()
    acked, lease = await client.ack_and_lease(topic, jobs, 1)  # type: ignore[attr-defined]
    assert acked == [True] and lease.jobs == []
