"""A feed entry's id is <feed_epoch>-<feed_total at its last event> in decimal digits, however
large the count (Lua writes a number as '%.14g': 1e+14 from 10^14 on, which XADD refuses)."""

from __future__ import annotations

import redis

import redisched


def test_ids_past_ten_to_the_fourteen_events_are_digits(
    client: redisched.Client, raw_redis: redis.Redis, topic: str
) -> None:
    meta, feed = f"redisched:{{{topic}}}:meta", f"redisched:{{{topic}}}:feed"
    client.put(topic, "first", b"x")  # the feed's first entry sets its epoch
    epoch = raw_redis.hget(meta, "feed_epoch")
    assert epoch is not None
    # the next event is the 10^14 + 10,100th: it passes a multiple of 100, so its XADD also
    # trims, from the first of the newest keep_events (10,000) on: both numbers past 10^14
    raw_redis.hset(meta, "feed_total", 10**14 + 10_099)
    client.put(topic, "second", b"x")
    last_id = raw_redis.xrevrange(feed, count=1)[0][0]
    assert last_id == epoch + b"-" + str(10**14 + 10_100).encode()
    assert raw_redis.hget(meta, "feed_total") == str(10**14 + 10_100).encode()
    assert raw_redis.hget(meta, "feed_epoch") == epoch
