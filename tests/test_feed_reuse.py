"""A topic deleted and used again: its new feed's ids sort after every id of the old feed, so
a follower holding a cursor of the old feed misses none of the new one's events (docs/design.md
section 8, "The feed")."""

from __future__ import annotations

from typing import Any

import pytest
import redis

import redisched
from tests.conftest import FakeClock

pytestmark = pytest.mark.asyncio


async def follow(api: Any, topic: str, after: str | None) -> tuple[list[str], str | None]:
    """Read the feed to its end as a follower does, a page at a time: (job ids, last cursor)."""
    seen: list[str] = []
    while page := await api.events(topic, after=after, limit=2):
        seen += [f"{e.id} {e.kind.value}" for e in page]
        after = page[-1].cursor
    return seen, after


@pytest.mark.parametrize(("old", "new"), [(5, 2), (2, 5), (3, 3)])
async def test_a_follower_of_a_deleted_topic_gets_every_event_of_its_new_feed(
    server_api: Any, topic: str, old: int, new: int
) -> None:
    """The new feed shorter, longer, as long as the old one: the old cursor misses nothing."""
    for i in range(old):
        await server_api.put(topic, f"old{i}", b"")
    seen, cursor = await follow(server_api, topic, None)
    assert seen == [f"old{i} put" for i in range(old)] and cursor is not None
    assert await server_api.delete_topic(topic) == old  # purges them: the old feed goes too
    for i in range(new):
        await server_api.put(topic, f"new{i}", b"")
    seen, _ = await follow(server_api, topic, cursor)
    assert seen == [f"new{i} put" for i in range(new)]


async def test_a_new_feeds_ids_are_fixed_by_a_fixed_clock(
    redis_url: str, topic: str, raw_redis: redis.Redis
) -> None:
    """Under a caller's clock (the vectors' way) the new feed's epoch is its now in µs; a
    topic re-used later by that clock starts a later epoch."""
    clock = FakeClock()
    feed = f"redisched:{{{topic}}}:feed"
    with redisched.Client.from_url(redis_url, clock=clock) as client:
        for i in range(4):
            client.put(topic, f"a{i}", b"")
        epoch = 1_900_000_000_000 * 1000
        assert [e[0] for e in raw_redis.xrange(feed)] == [
            f"{epoch}-{n}".encode() for n in range(1, 5)
        ]
        cursor = client.events(topic)[-1].cursor
        client.delete_topic(topic)
        clock.advance(0.001)
        client.put(topic, "b", b"")
        assert raw_redis.xrange(feed)[0][0] == f"{epoch + 1000}-1".encode()
        assert [e.id for e in client.events(topic, after=cursor)] == ["b"]


async def test_a_new_feed_on_the_server_clock_starts_at_its_time_in_us(
    server_api: Any, topic: str, raw_redis: redis.Redis
) -> None:
    seconds, micros = raw_redis.time()
    before = seconds * 1_000_000 + micros
    await server_api.put(topic, "a", b"")
    seconds, micros = raw_redis.time()
    epoch = int(raw_redis.hget(f"redisched:{{{topic}}}:meta", "feed_epoch"))
    assert before < epoch < seconds * 1_000_000 + micros
    assert [e.cursor.split(":")[0] for e in await server_api.events(topic)] == [f"{epoch}-1"]


FAR_AHEAD = 250_000_000_000.0
"""A caller's clock in the year 9892: its time in µs (2.5e17) is past 2^53, where Lua's numbers
stop holding every integer."""


async def test_feed_ids_past_2_to_the_53_stay_exact(
    redis_url: str, topic: str, raw_redis: redis.Redis
) -> None:
    """A new feed's epoch under a far clock is its now in µs to the digit, and a feed whose
    meta was reset takes its last id's first part + 1, exactly: every event is recorded."""
    clock = FakeClock(FAR_AHEAD)
    feed, meta = f"redisched:{{{topic}}}:feed", f"redisched:{{{topic}}}:meta"
    with redisched.Client.from_url(redis_url, clock=clock) as client:
        client.put(topic, "a", b"")
        epoch = 250_000_000_000_000 * 1000
        assert raw_redis.xrange(feed)[0][0] == f"{epoch}-1".encode()
        cursor = client.events(topic)[-1].cursor
        client.delete_topic(topic)
        clock.advance(0.001)
        client.put(topic, "b", b"")
        assert raw_redis.xrange(feed)[0][0] == f"{epoch + 1000}-1".encode()
        raw_redis.hdel(meta, "feed_epoch", "feed_total")  # a meta reset while the feed stays
        client.put(topic, "c", b"")
        assert raw_redis.xrange(feed)[-1][0] == f"{epoch + 1001}-1".encode()
        assert [e.id for e in client.events(topic, after=cursor)] == ["b", "c"]


@pytest.mark.parametrize("last", ["9007199254740993-5", "9999999999999999999-1"])
async def test_a_stream_written_by_hand_past_2_to_the_53_is_followed_exactly(
    server_api: Any, topic: str, raw_redis: redis.Redis, last: str
) -> None:
    """A feed that holds an id past 2^53 (no feed_epoch in meta): the first call takes its
    first part + 1, to the digit (a carry through every digit included), and records its
    event; the calls after it go on from there."""
    feed = f"redisched:{{{topic}}}:feed"
    raw_redis.xadd(feed, {"x": "y"}, id=last)
    await server_api.put(topic, "a", b"")
    await server_api.put(topic, "b", b"")
    epoch = int(last.split("-")[0]) + 1
    assert [e[0].decode() for e in raw_redis.xrange(feed)][1:] == [f"{epoch}-1", f"{epoch}-2"]
    assert [e.id for e in await server_api.events(topic, after=last)] == ["a", "b"]
