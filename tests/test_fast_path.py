"""The one-call fast path (issue 17): the shortcuts give what the long way gives."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from typing import Any

import hiredis
import pytest
import redis.asyncio
from redis.exceptions import DataError, NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from redisched import AsyncClient, InvalidArgument, Job, JobState, connect, wire
from redisched.durable import TopicFlags
from redisched.ops import (
    READ_BACK,
    Headed,
    Lease,
    Operations,
    Prepared,
    parse_job,
    parse_lease,
)
from redisched.protocol import ScriptLost, direct, finish, lost_script

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
    assert finish(call.parse, [[1, 1]]).version == 1
    flags.set("t", True)
    assert direct(call, {"t"}, flags) is None  # a durable topic's puts wait for a replica
    assert direct(OPS.put("t", "a", b"x", durable=True), {"t"}, TopicFlags()) is None
    ops = Operations()
    swept = ops.reserve("t")  # the topic's first reserve requeues timed-out leases first
    assert [step.script for step in swept.steps if step.script] == ["requeue", "reserve"]
    # a process with a requeue loop of its own (the HTTP service's long poll) never sweeps
    own = Operations().reserve_many("t", 5, sweep=False)
    assert [step.script for step in own.steps] == ["reserve"]
    assert direct(ops.reserve("t"), set(), None) is not None  # nothing to register or wait


def test_a_lost_script_sends_the_call_through_the_conversation() -> None:
    assert lost_script([NoScriptError("NOSCRIPT")])
    assert not lost_script([[1, 1]])
    with pytest.raises(ScriptLost):
        finish(OPS.put("t", "a", b"x").parse, [NoScriptError("NOSCRIPT")])


def test_parse_lease_shares_datetimes_and_makes_the_lease_that_lease_init_makes() -> None:
    job = [b"a", b"reserved", 1, 1, 0, 60_000, 25, 1_700_000_000_000, b"tok",
           1_700_000_060_000, None, b"x", 0]  # fmt: skip
    lease = parse_lease("t", [1_700_000_000_001, -1, 1_700_000_060_000, job, [b"b", *job[1:]]])
    assert type(lease) is Lease and [j.id for j in lease.jobs] == ["a", "b"]
    assert lease == Lease(lease.jobs, 1_700_000_000_001, None, 1_700_000_060_000)
    assert lease.jobs[0].reserved_until is lease.jobs[1].reserved_until
    assert lease.jobs[0] == parse_job("t", job)
    with pytest.raises(dataclasses.FrozenInstanceError):
        lease.now_ms = 0  # type: ignore[misc]


def test_put_with_read_back_is_the_put_asking_put_lua_for_the_job() -> None:
    for kwargs in ({}, {"replace": True}, {"if_version": 3, "delay": 5}):
        plain = OPS.put("t", "a", b"x", **kwargs)  # type: ignore[arg-type]
        once = OPS.put("t", "a", b"x", read_back=True, **kwargs)  # type: ignore[call-overload]
        *options, replace, expected, job_id, data = plain.steps[0].args
        assert once.steps[0].args == (*options, int(replace) + READ_BACK, expected, job_id, data)
        assert once.steps[0][:2] == plain.steps[0][:2] and once[2:] == plain[2:]
        stored = [b"a", b"ready", 1, 0, 0, 60_000, 25, 1_700_000_000_000, None, None, None,
                  b"x", 0]  # fmt: skip
        result, job = once.parse([[1, 1, stored]])
        assert result == plain.parse([[1, 1]]) and job == parse_job("t", stored)
        assert once.parse([[2, 4]])[1] is None  # exists: nothing stored
    with pytest.raises(InvalidArgument, match="read_back"):
        OPS.put("t", "a", b"x", read_back=1)  # type: ignore[call-overload]


def test_the_put_shortcuts_check_what_the_long_way_checks() -> None:
    ops = Operations(max_body_size=4)
    ops.put("t", "a", b"x")  # the topic prepared
    for bad_id in ["", "x" * 1025, "\udc80", 7, "\u00e9" * 513]:
        with pytest.raises(InvalidArgument, match="id"):
            ops.put("t", bad_id, b"x")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="body"):
        ops.put("t", "a", b"xxxxx")
    assert ops.put("t", "\u00e9" * 10, "xy").steps[0].args[-2:] == ("\u00e9" * 10, b"xy")
    with pytest.raises(InvalidArgument):
        ops.put("bad topic{", "a", b"x")


def test_lease_calls_are_made_once_per_topic_and_count_and_still_checked() -> None:
    ops = Operations()
    ops.reserve("t")  # with the topic's requeue first (Operations.swept)
    assert ops.reserve("t") is ops.reserve("t") and ops.lease("t", 5) is ops.lease("t", 5)
    assert ops.reserve_many("t", 5) is not ops.lease("t", 5)  # each reads its reply its way
    assert ops.reserve("t", ttr=5) is not ops.reserve("t", ttr=5)  # not the topic's ttr
    for count in [True, 0, 1001, 2.0]:
        with pytest.raises(InvalidArgument, match="count"):
            ops.lease("t", count)
    clocked = Operations(clock=lambda: 1.0)
    assert clocked.reserve("t") is not clocked.reserve("t")  # the client's clock: now differs


def test_a_lease_call_made_once_is_packed_once_and_packs_as_any_command() -> None:
    ops = Operations()
    ops.reserve("t")  # with the topic's requeue first (Operations.swept)
    batch = direct(ops.reserve("t"), set(), None)
    assert batch is not None and type(batch[0]) is Prepared
    sent = wire.packed(batch)
    assert sent == hiredis.pack_command(tuple(batch[0]))  # the bytes of the same command
    again = direct(ops.reserve("t"), set(), None)
    assert again is not None and wire.packed(again) is sent  # packed once
    for other in (ops.reserve("t", ttr=5), Operations(clock=lambda: 1.0).reserve("t")):
        made = direct(other, set(), None)  # a call made anew: its command too
        assert made is not None and type(made[0]) is tuple


def test_a_put_with_the_usual_options_packs_only_its_id_and_body() -> None:
    ops, flags = Operations(), TopicFlags()
    flags.set("t", False)  # known not durable: a put goes direct
    for replace in (False, True):
        batch = direct(ops.put("t", "job-1", b"x" * 70_000, replace=replace), {"t"}, flags)
        assert batch is not None and type(batch[0]) is Headed
        whole = hiredis.pack_command(tuple(batch[0]))
        assert wire.packed(batch) == whole  # the bytes of the same command, a large body too
        again = direct(ops.put("t", "job-2", "é", replace=replace), {"t"}, flags)
        assert again is not None and again[0].head is batch[0].head  # type: ignore[attr-defined]
        assert wire.packed(again) == hiredis.pack_command(tuple(again[0]))
    for other in (  # other options, or the client's clock: the whole command made each time
        ops.put("t", "job-1", b"x", delay=5),
        ops.put("t", "job-1", b"x", if_version=2),
        ops.put("t", "job-1", b"x", read_back=True),
        ops.put("t", "job-1", b"x", durable=False),
        Operations(clock=lambda: 1.0).put("t", "job-1", b"x"),
    ):
        made = direct(other, {"t"}, flags)
        assert made is not None and type(made[0]) is tuple


def test_a_job_of_a_checked_topic_is_still_checked_for_ack() -> None:
    ops = Operations()
    ops.reserve("t")  # the topic checked
    job = parse_job("t", [b"a", b"reserved", 1, 1, 0, 60_000, 25, 1, b"tok", 2, None, b"", 0])
    assert ops.ack(job).steps[0].args[1:3] == ("a", "tok")
    for changes in [{"token": None}, {"token": ""}, {"id": ""}, {"topic": "bad topic{"}]:
        with pytest.raises(InvalidArgument):
            ops.ack(dataclasses.replace(job, **changes))  # type: ignore[arg-type]


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


async def test_async_connections_write_without_a_task_and_keep_the_write_timeout(
    redis_url: str, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with AsyncClient.from_url(redis_url) as client:
        pool = client.redis.connection_pool
        assert pool.connection_class(**pool.connection_kwargs).socket_timeout  # default 5 s
        tasks = len(asyncio.all_tasks())
        writes: list[int] = []
        write = connect.HiredisPacking._send_packed_command

        async def counted(self: Any, command: Any) -> None:
            writes.append(len(asyncio.all_tasks()))  # redis-py's wait_for: one task more
            await write(self, command)

        monkeypatch.setattr(connect.HiredisPacking, "_send_packed_command", counted)
        await client.put(topic, "a", b"x")
        assert writes and set(writes) == {tasks}

        connection = await pool.get_connection()
        try:
            connection.socket_timeout = 0.05

            async def stuck(self: Any, command: Any) -> None:
                await asyncio.sleep(10)  # a peer that reads nothing: drain() waits

            monkeypatch.setattr(connect.HiredisPacking, "_send_packed_command", stuck)
            with pytest.raises(RedisTimeoutError, match="Timeout writing to socket"):
                await connection.send_packed_command(b"PING\r\n")
            assert not connection.is_connected  # dropped, as redis-py drops it
        finally:
            await pool.release(connection)


def test_only_a_lease_asks_reserve_lua_for_the_times_it_returns() -> None:
    # reserve() and reserve_many() drop next_due_ms / next_timeout_ms: times 0 spares the
    # script two ZRANGE WITHSCORES; lease() and ack_and_lease() read them (times empty)
    times = {
        "reserve": OPS.reserve("t").steps[-1].args[-1],  # after a requeue, the first time
        "reserve_many": OPS.reserve_many("t", 5).steps[-1].args[-1],
        "reserve, ttr": OPS.reserve("t", ttr=5).steps[-1].args[-1],
        "lease": OPS.lease("t", 5).steps[0].args[-1],
        "ack_and_lease": OPS.ack_and_lease("t", [], 5).steps[-1].args[-1],
    }
    assert times == {
        "reserve": 0, "reserve_many": 0, "reserve, ttr": 0, "lease": "", "ack_and_lease": "",
    }  # fmt: skip
