"""The records a put of many jobs writes are the ones a field-by-field encoding gives.

put.lua builds a created job's record from parts packed once per call (the fields every job
shares, the put event), its SEQ's code and its body's MessagePack header, and a ready job's
member from the hex of its SEQ in blocks of 256 (lua/README.md, "What a call costs"). These
tests check each stored record against ``cmsgpack.pack`` of its own decoded fields, byte for
byte, and each field and member against what the put asked for, across the places where
the parts change: SEQ at 256, 65536 and 2^32, body lengths at MessagePack's header sizes,
a replaced job (the other path) taking a SEQ between created ones.
"""

from __future__ import annotations

import struct

import pytest
import redis

import redisched
from redisched import PutStatus
from redisched.keys import TopicKeys
from tests.conftest import FakeClock

READY, SCHEDULED = 2, 1
RECORD = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local fields = {cmsgpack.unpack(raw)}
fields[#fields + 1] = raw == cmsgpack.pack(unpack(fields)) and 1 or 0
return fields
"""
"""A job's record fields (STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ,
BODY, LOG when kept), then 1 when the record is exactly cmsgpack.pack of those fields."""
SIZES = [0, 1, 31, 32, 255, 256, 65535, 65536, 100]


@pytest.mark.parametrize("first_seq", [0, 256 - 7, 65536 - 7, 2**32 - 7])  # "old" at a block
@pytest.mark.parametrize("delay", [None, 60])
def test_put_many_stores_each_record_as_its_fields_encode(
    redis_url: str, raw_redis: redis.Redis, topic: str, first_seq: int, delay: int | None
) -> None:
    clock = FakeClock()
    client = redisched.Client.from_url(redis_url, clock=clock)
    keys = TopicKeys("redisched", topic)
    client.put(topic, "old", b"before")  # replaced below: its new SEQ falls between created ones
    raw_redis.hset(keys.name("meta"), "seq", first_seq)
    jobs = [(f"j{i}", b"b" * SIZES[i % len(SIZES)]) for i in range(300)]
    jobs.insert(6, ("old", b"after"))
    results = client.put_many(topic, jobs, delay=delay, priority=3, ttr=7, replace=True)
    assert [r.status for r in results] == [
        PutStatus.REPLACED if i == "old" else PutStatus.CREATED for i, _ in jobs
    ]
    record = raw_redis.register_script(RECORD)
    now_ms = int(clock() * 1000)
    members = set(raw_redis.zrange(keys.name("ready"), 0, -1))
    for n, (job_id, body) in enumerate(jobs):
        fields = record(keys=[keys.name("jobs")], args=[job_id])
        assert fields[-1] == 1, job_id  # the bytes are the fields' own encoding
        state, version, attempts, priority, ttr, max_attempts, run_at, seq, stored = fields[:9]
        assert (attempts, priority, ttr, max_attempts, stored) == (0, 3, 7000, 25, body)
        assert version == (2 if job_id == "old" else 1)
        if delay is None:
            assert (state, run_at, seq) == (READY, now_ms, first_seq + n + 1)
            assert f"{seq:012x}{job_id}".encode() in members
            if job_id != "old":  # a log of the put event
                assert fields[9:] == [b"\1" + struct.pack(">BdIIH", 1, now_ms, 1, 0, 0), 1]
        else:
            assert (state, run_at) == (SCHEDULED, now_ms + 60_000)
            if job_id != "old":  # the put event implied: SEQ holds run_at - the put's time
                assert (seq, len(fields)) == (60_000, 10)
    client.close()


def test_put_many_of_versions_after_finished_ids(
    redis_url: str, raw_redis: redis.Redis, topic: str
) -> None:
    """Finished ids come back at their next version, between new ones, in one call."""
    clock = FakeClock()
    client = redisched.Client.from_url(redis_url, clock=clock)
    keys = TopicKeys("redisched", topic)
    client.put_many(topic, [(f"f{i}", b"x") for i in range(5)])
    client.ack_many(topic, client.lease(topic, 5).jobs)
    jobs = [(f"{p}{i}", b"y") for i in range(5) for p in ("f", "n")]
    results = client.put_many(topic, jobs)
    assert [r.version for r in results] == [2, 1] * 5
    record = raw_redis.register_script(RECORD)
    for job_id, _ in jobs:
        fields = record(keys=[keys.name("jobs")], args=[job_id])
        assert fields[-1] == 1 and fields[1] == (2 if job_id[0] == "f" else 1), job_id
    client.close()


@pytest.mark.parametrize("history", [True, False])
def test_a_topics_meta_is_kept_as_a_hash_table_once_its_feed_starts(
    redis_url: str, raw_redis: redis.Redis, topic: str, history: bool
) -> None:
    """meta's fields are read by every call: as a hash table each is a lookup, where a listpack
    (Redis's encoding of a small hash) scans every field for each one asked that is absent."""
    client = redisched.Client.from_url(redis_url)
    meta = TopicKeys("redisched", topic).name("meta")
    if not history:
        client.configure(topic, history=False)
    client.put(topic, "a", b"x")
    client.ack(client.reserve(topic))
    encoding = raw_redis.object("encoding", meta)
    if history:
        assert encoding == b"hashtable"
    else:  # no feed: meta as small hashes are (Redis 6 says ziplist)
        assert encoding in (b"listpack", b"ziplist")
    if history:
        assert len(raw_redis.hget(meta, "encoding") or b"") > 64
