"""A lease of many jobs keeps the ``reserved`` sorted set a skip list (reserve.lua).

A small sorted set is a listpack, which places each new member by a scan: a Worker's round trip
(its acks empty ``reserved``, its lease fills it again) spent a third of its Redis time there.
reserve.lua turns it into a skip list with a member too long for a listpack, added and removed
in the same call. Nothing of it may show, and no job's reservation may be lost to it.
"""

from __future__ import annotations

import redis

import redisched
from redisched.keys import TopicKeys

SENTINEL = "\0redisched: a member longer than 64 bytes, zset-max-listpack-value"
"""The member reserve.lua adds and removes (any change there must change it here)."""


def reserved_key(topic: str) -> str:
    return TopicKeys("redisched", topic).name("reserved")


def test_a_lease_of_many_jobs_makes_a_skip_list_and_leaves_no_trace(
    client: redisched.Client, raw_redis: redis.Redis, topic: str
) -> None:
    client.put_many(topic, [(f"j{i:02d}", b"x") for i in range(40)])
    jobs = client.reserve_many(topic, 20)
    key = reserved_key(topic)
    assert raw_redis.object("encoding", key) == b"skiplist"
    assert sorted(raw_redis.zrange(key, 0, -1)) == sorted(j.id.encode() for j in jobs)
    assert client.stats(topic).reserved == 20
    # it stays a skip list while it holds members; acked empty, it is gone
    more = client.reserve_many(topic, 3)
    assert raw_redis.object("encoding", key) == b"skiplist"
    assert client.ack_many(topic, [*jobs, *more]) == [True] * 23
    assert raw_redis.exists(key) == 0


def test_a_small_lease_keeps_the_small_set(
    client: redisched.Client, raw_redis: redis.Redis, topic: str
) -> None:
    client.put_many(topic, [(f"j{i:02d}", b"x") for i in range(20)])
    client.reserve_many(topic, 15)
    assert raw_redis.object("encoding", reserved_key(topic)) in (b"listpack", b"ziplist")


def test_a_job_named_like_the_member_keeps_its_reservation(
    client: redisched.Client, raw_redis: redis.Redis, topic: str
) -> None:
    # leased in the same call as the member is added: its deadline stands, it is not removed
    client.put(topic, SENTINEL, b"odd", priority=-1)
    client.put_many(topic, [(f"j{i:02d}", b"x") for i in range(30)])
    jobs = client.reserve_many(topic, 20)
    assert jobs[0].id == SENTINEL
    key = reserved_key(topic)
    assert raw_redis.zscore(key, SENTINEL) == round(jobs[0].reserved_until.timestamp() * 1000)
    assert raw_redis.zcard(key) == 20
    # reserved already, in a set still small, when the next lease adds the member: NX leaves
    # it at its deadline and nothing removes it (a server that keeps such members in listpacks)
    client.put_many(topic, [(f"k{i:02d}", b"x") for i in range(20)])
    raw_redis.delete(key)  # as if emptied, but the job's record still says reserved
    setting = "zset-max-ziplist-value"
    kept = raw_redis.config_get(setting)[setting]
    raw_redis.config_set(setting, 128)
    try:
        raw_redis.zadd(key, {SENTINEL: 1})
        assert raw_redis.object("encoding", key) in (b"listpack", b"ziplist")
        assert len(client.reserve_many(topic, 20)) == 20  # 16 or more: the member is added
    finally:
        raw_redis.config_set(setting, kept)
    assert raw_redis.zscore(key, SENTINEL) == 1
    assert raw_redis.zcard(key) == 21
    client.ack(jobs[0])
    assert client.get(topic, SENTINEL) is None
