"""A burst of jobs due at once is promoted in steps the size of the leases (issue 17)."""

from __future__ import annotations

import redis

import redisched
from tests.conftest import FakeClock


def sizes(raw_redis: redis.Redis, topic: str) -> tuple[int, int]:
    """(scheduled, ready) as the zsets hold them (stats counts due jobs as ready)."""
    return (
        int(raw_redis.zcard(f"redisched:{{{topic}}}:scheduled")),
        int(raw_redis.zcard(f"redisched:{{{topic}}}:ready")),
    )


def test_a_reserve_promotes_no_more_than_it_leases_or_100(
    redis_url: str, raw_redis: redis.Redis, topic: str, clock: FakeClock
) -> None:
    with redisched.Client.from_url(redis_url, clock=clock) as client:
        client.put_many(topic, [(f"j{i:03d}", b"") for i in range(300)], delay=60)
        clock.advance(60)
        assert client.reserve(topic).id == "j000"  # type: ignore[union-attr]
        assert sizes(raw_redis, topic) == (200, 99)
        leased = client.reserve_many(topic, 150)  # the 99 ready, then 51 of 150 promoted
        assert [job.id for job in leased] == [f"j{i:03d}" for i in range(1, 151)]
        assert sizes(raw_redis, topic) == (50, 99)


def test_promote_limit_still_bounds_a_call(
    redis_url: str, raw_redis: redis.Redis, topic: str, clock: FakeClock
) -> None:
    with redisched.Client.from_url(redis_url, clock=clock, promote_limit=10) as client:
        client.put_many(topic, [(f"j{i:03d}", b"") for i in range(30)], delay=60)
        clock.advance(60)
        assert len(client.reserve_many(topic, 20)) == 10
        assert sizes(raw_redis, topic) == (20, 0)
