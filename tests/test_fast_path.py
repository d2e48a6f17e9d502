"""The one-call fast path (issue 17): the shortcuts give what the long way gives."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
import redis.asyncio
from redis.exceptions import DataError, NoScriptError

from redisched import AsyncClient, Job, JobState, connect
from redisched.durable import TopicFlags
from redisched.ops import Operations, parse_job
from redisched.protocol import direct, finish, lost_script

OPS = Operations()


def test_parse_job_makes_the_job_that_job_init_makes() -> None:
    reply = [b"a", b"reserved", 2, 1, 5, 60_000, 25, 1_700_000_000_000, b"tok",
             1_700_000_060_000, b"boom", b"body", 3]  # fmt: skip
    job = parse_job("t", reply)
    expected = Job(
        topic="t", id="a", body=b"body", state=JobState.RESERVED,
        run_at=datetime.fromtimestamp(1_700_000_000, UTC), priority=5, ttr=60.0, attempts=1,
        max_attempts=25, version=2, token="tok",
        reserved_until=datetime.fromtimestamp(1_700_000_060, UTC), last_error="boom",
        pending_version=3,
    )  # fmt: skip
    assert job == expected and repr(job) == repr(expected)
    for field in dataclasses.fields(Job):  # every field set (a slot left empty would raise)
        assert getattr(job, field.name) == getattr(expected, field.name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.id = "b"  # type: ignore[misc]


def test_a_known_topic_goes_direct_and_a_new_one_registers_first() -> None:
    call = OPS.put("t", "a", b"x")
    flags = TopicFlags()
    assert direct(call, set(), flags) is None  # the topic is registered first
    assert direct(call, {"t"}, flags) is None  # its durable setting is not known yet
    flags.set("t", False)
    batch = direct(call, {"t"}, flags)
    assert batch is not None and batch[0][0] == "EVALSHA" and batch[0][-2:] == ("a", b"x")
    assert finish(call, [[1, 1]]).version == 1
    flags.set("t", True)
    assert direct(call, {"t"}, flags) is None  # a durable topic's puts wait for a replica
    assert direct(OPS.put("t", "a", b"x", durable=True), {"t"}, TopicFlags()) is None
    assert direct(OPS.reserve("t"), set(), None) is not None  # nothing to register or wait


def test_a_lost_script_sends_the_call_through_the_conversation() -> None:
    assert lost_script([NoScriptError("NOSCRIPT")])
    assert not lost_script([[1, 1]])


async def test_async_connections_from_a_url_pack_with_hiredis(redis_url: str, topic: str) -> None:
    async with AsyncClient.from_url(redis_url) as client:
        assert isinstance(client.redis, redis.asyncio.Redis)
        pool = client.redis.connection_pool
        assert issubclass(pool.connection_class, connect.HiredisPacking)
        packing = pool.connection_class(**pool.connection_kwargs)
        plain = redis.asyncio.Connection(**pool.connection_kwargs)
        for args in [
            ("EVALSHA", "f" * 40, 1, "k", b"\x00\xff", 7, 1.5, "\u00e9"),
            ("CONFIG GET", "maxmemory"),  # split as redis-py splits it
            ("SET", "k", bytearray(b"v")),  # not hiredis's: redis-py's packer
        ]:
            assert b"".join(packing.pack_command(*args)) == b"".join(plain.pack_command(*args))
        with pytest.raises(DataError):
            packing.pack_command("SET", "k", True)
        await client.put(topic, "a", b"x")
        job = await client.reserve(topic)
        assert job is not None and job.body == b"x"
        await client.ack(job)
