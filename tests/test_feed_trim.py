"""The feed's trimming cadence (one MINID ~ per 100 events): the newest keep_events events
stay, the feed stays bounded, across epochs and when keep_events is lowered."""

from __future__ import annotations

import itertools
import random

import pytest
import redis

import redisched

SPAN = """
local out = {}
for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  out[#out + 1] = {e[1], #e[2] / 2}  -- an event is two fields: its bytes, the job id
end
return out
"""


def entries(raw: redis.Redis, topic: str) -> list[tuple[int, int, int]]:
    """(epoch, N, events) of each feed entry."""
    got = raw.eval(SPAN, 1, f"redisched:{{{topic}}}:feed")
    out = []
    for entry_id, events in got:
        epoch, n = entry_id.decode().split("-")
        out.append((int(epoch), int(n), int(events)))
    return out


def check(raw: redis.Redis, topic: str, keep: int) -> None:
    meta = f"redisched:{{{topic}}}:meta"
    total = int(raw.hget(meta, "feed_total") or 0)
    epoch = int(raw.hget(meta, "feed_epoch") or 0)
    got = entries(raw, topic)
    ids = [(e, n) for e, n, _ in got]
    assert ids == sorted(set(ids))  # strictly increasing
    cur = [(n, c) for e, n, c in got if e == epoch]
    # consecutive within the epoch: each entry's events end where the next one's start
    for (n1, _), (n2, c2) in itertools.pairwise(cur):
        assert n2 - c2 == n1
    assert cur[-1][0] == total
    first_event = cur[0][0] - cur[0][1] + 1
    held = total - first_event + 1
    # the newest keep events are all held
    assert first_event <= max(1, total - keep + 1), (total, first_event, keep)
    # the bound: keep + <100 events waiting for the next trim + one node of <=100 entries
    # (each entry of <=500 events)
    nodes_extra = sum(c for _, c in cur[:100])
    assert held <= keep + 100 + nodes_extra, (held, keep)


@pytest.mark.parametrize("keep", [1, 3, 99, 100, 101, 250])
def test_feed_keeps_the_newest_and_stays_bounded(
    client: redisched.Client, raw_redis: redis.Redis, topic: str, keep: int
) -> None:
    rng = random.Random(keep)
    client.configure(topic, keep_events=keep)
    n = 0
    for step in range(400):
        size = rng.choice([1, 1, 1, 2, 3, 7, 60, 150, 501, 1100]) if step % 5 == 0 else 1
        client.put_many(topic, [(f"j{n + i}", b"") for i in range(size)])
        n += size
        if step % 7 == 3:
            client.delete_many(topic, [f"j{i}" for i in range(max(0, n - 250), n)])
        check(raw_redis, topic, keep)


def test_feed_keeps_the_newest_across_an_epoch_change(
    client: redisched.Client, raw_redis: redis.Redis, topic: str
) -> None:
    """A meta reset while the feed stayed (the fallback branch): ids go on in a later epoch."""
    client.configure(topic, keep_events=150)
    for i in range(230):
        client.put(topic, f"a{i}", b"")
    meta = f"redisched:{{{topic}}}:meta"
    first = int(raw_redis.hget(meta, "feed_epoch"))  # a new feed's: the clock, in µs
    raw_redis.hdel(meta, "feed_epoch", "feed_total")
    for i in range(600):
        client.put(topic, f"b{i}", b"")
        got = entries(raw_redis, topic)
        ids = [(e, n) for e, n, _ in got]
        assert ids == sorted(set(ids))
        new = sum(c for e, _, c in got if e == first + 1)
        old = sum(c for e, _, c in got if e == first)
        assert new == i + 1 or new >= 150  # the new epoch's events: all, or >= keep
        if new < 150:
            assert old >= 150 - new  # the old epoch's newest stay until keep new events exist
    assert sum(c for e, _, c in entries(raw_redis, topic)) <= 150 + 100 + 100


def test_lowering_keep_events_trims_a_long_feed_at_the_next_trim(
    client: redisched.Client, raw_redis: redis.Redis, topic: str
) -> None:
    """A trim (one per 100 events) evicts up to FEED_TRIM_LIMIT (100,000) entries: with
    Redis's default LIMIT (100 * stream-node-max-entries, 10,000) a feed of N one-event
    entries took N/100 calls to come back within keep_events after it was lowered."""
    feed = f"redisched:{{{topic}}}:feed"
    client.configure(topic, keep_events=12_000)
    for i in range(12_000):
        client.put(topic, f"a{i}", b"")
    assert raw_redis.xlen(feed) == 12_000
    client.configure(topic, keep_events=100)
    for i in range(100):  # passes the next multiple of 100 events
        client.put(topic, f"b{i}", b"")
    assert raw_redis.xlen(feed) <= 100 + 100 + 100
