"""Script calls go over a pooled connection without redis-py's command wrapper
(``redisched.wire``), and lose nothing: error replies, NOSCRIPT recovery, a dropped
connection, a server that is gone, and clients that must keep ``execute_command``."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
import redis.asyncio
import redis.connection
import redis.sentinel
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

import redisched
from redisched import wire
from redisched.errors import BackendError, InvalidArgument, StaleReservation
from redisched.models import PutStatus


class Traced(redis.Redis):
    """A client whose execute_command is instrumented (as a tracing library would do)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.traced: list[str] = []

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.traced.append(str(args[0]))
        return super().execute_command(*args, **options)


@pytest.fixture
def pooled(redis_url: str) -> Iterator[redis.Redis]:
    conn = redis.Redis.from_url(redis_url)
    yield conn
    conn.close()


def test_plain_clients_take_the_wire_and_others_keep_execute_command(redis_url: str) -> None:
    assert wire.usable(redis.Redis.from_url(redis_url))
    assert wire.usable(redis.asyncio.Redis.from_url(redis_url))
    assert not wire.usable(Traced.from_url(redis_url))
    assert not wire.usable(redis.Redis.from_url(redis_url, single_connection_client=True))
    assert not wire.usable(redis.asyncio.Redis.from_url(redis_url, single_connection_client=True))
    assert not wire.usable(redis.Redis.from_url(redis_url, encoding="latin-1"))
    assert wire.usable(redis.Redis.from_url(redis_url, encoding="UTF-8", decode_responses=True))


def test_a_traced_client_sees_every_command(redis_url: str, topic: str) -> None:
    traced = Traced.from_url(redis_url)
    client = redisched.Client(traced)
    client.put(topic, "a", b"x")
    client.put(topic, "b", b"x")
    assert client.get(topic, "b") is not None
    assert traced.traced.count("EVALSHA") >= 3
    traced.close()


def test_calls_over_the_wire_keep_replies_and_errors(
    pooled: redis.Redis, topic: str
) -> None:  # fmt: skip
    client = redisched.Client(pooled, keep_connections=True)
    assert isinstance(client._wire, wire.Wire)
    assert client.put(topic, "j", b"body").status is PutStatus.CREATED
    assert client.put(topic, "j", b"other").status is PutStatus.EXISTS  # nothing changed
    job = client.reserve(topic)
    assert job is not None and job.body == b"body"
    client.ack(job)
    assert client.get(topic, "j") is None
    with pytest.raises(StaleReservation):
        client.touch(job)
    with pytest.raises(InvalidArgument):
        client.put(topic, "", b"")


def test_a_batch_keeps_its_replies_in_order_with_errors_in_place(pooled: redis.Redis) -> None:
    ok, failing = (
        pooled.script_load("return ARGV[1]"),
        pooled.script_load("return redis.error_reply('ERR boom')"),
    )
    replies = wire.Wire(pooled).send([
        ("EVALSHA", ok, 0, "one"), ("EVALSHA", "0" * 40, 0), ("EVALSHA", failing, 0),
        ("EVALSHA", ok, 0, "two"),
    ])  # fmt: skip
    assert isinstance(replies, list) and len(replies) == 4
    assert replies[0] == b"one" and replies[3] == b"two"
    assert isinstance(replies[1], redis.exceptions.NoScriptError)
    assert isinstance(replies[2], redis.exceptions.ResponseError) and "boom" in str(replies[2])
    assert wire.Wire(pooled).send([("EVALSHA", ok, 0, "x")]) == [b"x"]  # the connection is in step


def test_only_script_calls_go_over_the_wire(pooled: redis.Redis) -> None:
    # redis-py parses some replies (HGETALL into a dict): those commands keep its path
    assert wire.Wire(pooled).send([("HGETALL", "nothing")]) is wire.AGAIN
    assert wire.Wire(pooled).send([("EVALSHA", "0" * 40, 0), ("PING",)]) is wire.AGAIN


def test_the_refill_check_and_time_ride_with_script_calls(pooled: redis.Redis) -> None:
    # redis-py returns a ZRANGE without options as read; its TIME's texts every caller int()s
    pooled.zadd("{wire}:refill", {"a": 1, "b": 2})
    ok = pooled.script_load("return ARGV[1]")
    replies = wire.Wire(pooled).send([
        ("EVALSHA", ok, 0, "one"), ("ZRANGE", "{wire}:refill", 0, 9), ("TIME",),
    ])  # fmt: skip
    assert isinstance(replies, list)
    assert replies[:2] == [b"one", pooled.zrange("{wire}:refill", 0, 9)] == [b"one", [b"a", b"b"]]
    seconds, micros = replies[2]
    assert abs(int(seconds) - pooled.time()[0]) <= 1 and 0 <= int(micros) < 1_000_000
    # with an option redis-py pairs members and scores (WITHSCORES): its path
    assert wire.Wire(pooled).send([("ZRANGE", "{wire}:refill", 0, 9, "WITHSCORES")]) is wire.AGAIN
    assert wire.Wire(pooled).send([("ZRANGE", "{wire}:refill", 0)]) is wire.AGAIN


def test_an_occurrences_ack_and_its_refill_go_over_the_wire(
    redis_url: str, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the refill check rides on an occurrence's ack: it kept the batch off the wire (~40 µs)
    client = redisched.Client.from_url(redis_url)
    sent: list[Any] = []
    send = wire.Wire.send

    def counted(self: wire.Wire, batch: Any) -> Any:
        reply = send(self, batch)
        sent.append((tuple(command[0] for command in batch), reply is wire.AGAIN))
        return reply

    monkeypatch.setattr(wire.Wire, "send", counted)
    tick = client.schedule(topic, "tick", b"x", cron="* * * * *")
    assert tick.next_run_at is not None
    assert client.run_now(topic, f"tick@{tick.next_run_at:%Y-%m-%dT%H:%M:%SZ}")
    job = client.reserve(topic)  # (its requeue sweep reads the refill set: add to it after)
    assert job is not None and job.id.startswith("tick@")
    client.redis.zadd(f"redisched:{{{topic}}}:refill", {"tick": 0})  # as reserve.lua asks
    sent.clear()
    client.ack(job)
    assert ("EVALSHA", "ZRANGE") in [commands for commands, _ in sent]
    assert any("TIME" in commands for commands, _ in sent)  # the refill's clock and read
    # (a script's first call on a server loads it: SCRIPT LOAD keeps redis-py's path)
    riding = [again for commands, again in sent if "ZRANGE" in commands or "TIME" in commands]
    assert riding and not any(riding)
    assert client.redis.zcard(f"redisched:{{{topic}}}:refill") == 0  # refilled
    client.close()


def test_a_lost_script_is_loaded_again(pooled: redis.Redis, topic: str) -> None:
    client = redisched.Client(pooled, keep_connections=True)
    client.put(topic, "a", b"")
    pooled.script_flush()
    assert client.put(topic, "b", b"").status is PutStatus.CREATED
    assert [j.id for j in client.reserve_many(topic, 10)] == ["a", "b"]


def test_a_dropped_connection_is_replaced_and_the_call_goes_through(
    pooled: redis.Redis, raw_redis: redis.Redis, topic: str
) -> None:  # fmt: skip
    client = redisched.Client(pooled, keep_connections=True)
    client.put(topic, "a", b"")
    name = "redisched-wire-test"
    pooled.client_setname(name)  # the pool's only connection
    killed = [c["id"] for c in raw_redis.client_list() if c.get("name") == name]
    assert killed and raw_redis.client_kill_filter(_id=killed[0])
    assert client.put(topic, "b", b"").status is PutStatus.CREATED
    assert {j.id for j in client.reserve_many(topic, 10)} == {"a", "b"}


def test_a_server_that_is_gone_is_a_backend_error(topic: str) -> None:
    gone = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    client = redisched.Client(gone, keep_connections=True)
    assert isinstance(client._wire, wire.Wire)
    with pytest.raises(BackendError):
        client.put(topic, "a", b"")


async def test_the_async_client_over_the_wire(redis_url: str, topic: str) -> None:
    # no resends: the killed connection below must be replaced before a call goes out on it
    conn = redis.asyncio.Redis.from_url(redis_url, retry=AsyncRetry(NoBackoff(), 0))
    client = redisched.AsyncClient(conn, keep_connections=True)
    assert isinstance(client._wire, wire.AsyncWire)
    assert (await client.put(topic, "a", b"x")).status is PutStatus.CREATED
    await conn.script_flush()
    assert (await client.put(topic, "b", b"x")).status is PutStatus.CREATED
    [kept] = client._wire._kept.idle  # the wire's connection, killed while idle
    await kept.send_command("CLIENT", "ID")
    assert await conn.client_kill_filter(_id=await kept.read_response())
    jobs = await client.reserve_many(topic, 10)
    assert sorted(j.id for j in jobs) == ["a", "b"]
    await client.close()


def _known_topic(client: redisched.Client, topic: str) -> None:
    # so that a put is a direct (one EVALSHA) call, the path Wire.send takes
    client._registered.add(topic)
    client._durable_topics.set(topic, False)


def _connect_attempts(monkeypatch: pytest.MonkeyPatch, use_wire: bool) -> int:
    attempts = [0]
    original = redis.connection.Connection._connect

    def counting(self: Any) -> Any:
        attempts[0] += 1
        return original(self)

    monkeypatch.setattr(redis.connection.Connection, "_connect", counting)
    gone = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    client = redisched.Client(gone, keep_connections=True)
    if not use_wire:
        client._wire = None
    _known_topic(client, "t")
    with pytest.raises(BackendError):
        client.put("t", "a", b"")
    return attempts[0]


def test_a_server_that_is_gone_costs_one_round_of_connect_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Wire.send's get_connection() already connects with redis-py's retries; its AGAIN then
    # makes execute_command connect (and retry) all over again: twice the attempts and time
    # before a one-server client (retry_for 0) reports the outage.
    assert _connect_attempts(monkeypatch, True) == _connect_attempts(monkeypatch, False)


def test_a_full_blocking_pool_is_waited_for_once(redis_url: str, topic: str) -> None:
    pool = redis.BlockingConnectionPool.from_url(redis_url, max_connections=1, timeout=0.5)
    conn = redis.Redis(connection_pool=pool)
    client = redisched.Client(conn, keep_connections=True)
    assert isinstance(client._wire, wire.Wire)
    _known_topic(client, topic)
    held = pool.get_connection()
    try:
        started = time.monotonic()
        with pytest.raises(BackendError):
            client.put(topic, "a", b"")
        waited = time.monotonic() - started
    finally:
        pool.release(held)
        conn.close()
    assert waited < 0.9, f"waited {waited:.2f} s for a pool whose timeout is 0.5 s"


class _Master:
    """A Sentinel manager that names the test server as the primary."""

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self.sentinels: list[Any] = []

    def discover_master(self, service_name: str) -> tuple[str, int]:
        return self.address

    def check_master_state(self, *args: Any) -> bool:
        return True


class _Interrupted(BaseException):
    pass


def test_an_interrupted_batch_on_a_sentinel_client_leaves_no_reply_behind(
    redis_url: str,
) -> None:
    # redis-py's sync SentinelManagedConnection.read_response defaults disconnect_on_error
    # to False: an exception that is neither a ResponseError nor a connection error (a signal
    # handler's, KeyboardInterrupt, gevent's Timeout) leaves the batch's later replies unread
    # when Wire.send releases the connection; the next command then reads them as its own.
    url = redis.connection.parse_url(redis_url)
    pool = redis.sentinel.SentinelConnectionPool(
        "mymaster", _Master(url.get("host", "127.0.0.1"), url["port"])
    )
    conn = redis.Redis(connection_pool=pool)
    assert wire.usable(conn)
    fast = conn.script_load("return ARGV[1]")
    slow = conn.script_load(
        "local t = redis.call('TIME') local s = t[1] * 1e6 + t[2]"
        " repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] - s > 300000 return 'slow'"
    )

    def interrupt(*_: object) -> None:
        raise _Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(_Interrupted):
            wire.Wire(conn).send([("EVALSHA", fast, 0, "one"), ("EVALSHA", slow, 0)])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    try:
        assert wire.Wire(conn).send([("EVALSHA", fast, 0, "mine")]) == [b"mine"]
    finally:
        conn.close()


SPIN = (
    "redis.call('INCR', KEYS[1]) local t = redis.call('TIME') local s = t[1] * 1e6 + t[2]"
    " repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] - s > 300000 return 1"
)


@pytest.mark.parametrize("retries", [0, 3])
def test_a_batch_cut_short_goes_again_only_when_the_retry_policy_resends(
    redis_url: str, raw_redis: redis.Redis, topic: str, retries: int
) -> None:  # fmt: skip
    conn = redis.Redis.from_url(redis_url, socket_timeout=0.1, retry=Retry(NoBackoff(), retries))
    spin, runs = conn.script_load(SPIN), f"{topic}:runs"
    try:
        if retries:
            assert wire.Wire(conn).send([("EVALSHA", spin, 1, runs)]) is wire.AGAIN
        else:
            with pytest.raises(redis.exceptions.TimeoutError):
                wire.Wire(conn).send([("EVALSHA", spin, 1, runs)])
        time.sleep(0.4)  # the script ran to its end in Redis, once
        assert raw_redis.get(runs) == b"1"
        assert wire.Wire(conn).send([("EVALSHA", conn.script_load("return 2"), 0)]) == [2]
    finally:
        conn.close()


def _kept(client: redisched.Client | redisched.AsyncClient) -> list[Any]:
    assert isinstance(client._wire, wire.Wire | wire.AsyncWire)
    return client._wire._kept.idle


def test_a_client_keeps_its_connection_between_calls(pooled: redis.Redis, topic: str) -> None:
    client = redisched.Client(pooled, keep_connections=True)
    client.put(topic, "a", b"")
    [connection] = _kept(client)
    for i in range(5):
        client.put(topic, f"b{i}", b"")
    assert _kept(client) == [connection]
    assert pooled.connection_pool._created_connections == 1
    client.close()
    assert _kept(client) == [] and not pooled.connection_pool._in_use_connections


def test_a_kept_connection_the_server_closed_is_replaced_before_the_call(
    redis_url: str, raw_redis: redis.Redis, topic: str
) -> None:  # fmt: skip
    # no resends: a put sent on the closed connection would fail
    conn = redis.Redis.from_url(redis_url, retry=Retry(NoBackoff(), 0))
    client = redisched.Client(conn, keep_connections=True)
    client.put(topic, "a", b"")
    [connection] = _kept(client)
    connection.send_command("CLIENT", "ID")
    assert raw_redis.client_kill_filter(_id=connection.read_response())
    assert client.put(topic, "b", b"").status is PutStatus.CREATED
    assert {j.id for j in client.reserve_many(topic, 10)} == {"a", "b"}
    client.close()


def test_threads_share_a_client_with_a_connection_each_at_most(
    pooled: redis.Redis, topic: str
) -> None:  # fmt: skip
    client = redisched.Client(pooled, keep_connections=True)
    threads = 8

    def put_some(thread: int) -> list[PutStatus]:
        return [client.put(topic, f"{thread}-{i}", b"x").status for i in range(50)]

    with ThreadPoolExecutor(threads) as pool:
        statuses = [s for done in pool.map(put_some, range(threads)) for s in done]
    assert statuses == [PutStatus.CREATED] * threads * 50
    # Each thread held one connection at a time; the only ones still lent out are the kept
    # ones. A call that took redis-py's path (the topic's registration, its durable setting)
    # gave the kept ones back to the pool first, so some may wait there, not kept again.
    pool, kept = pooled.connection_pool, _kept(client)
    assert 1 <= len(kept) == len(set(kept)) and set(kept) == pool._in_use_connections
    assert len(kept) + len(pool._available_connections) == pool._created_connections <= threads
    assert client.stats(topic).ready == threads * 50


def test_a_forked_child_does_not_use_the_parents_connection(
    pooled: redis.Redis, topic: str
) -> None:  # fmt: skip
    client = redisched.Client(pooled, keep_connections=True)
    client.put(topic, "parent", b"")
    [parents] = _kept(client)
    child = os.fork()
    if child == 0:  # the child: exit 0 only if its put went over a connection of its own
        ok = False
        try:
            created = client.put(topic, "child", b"").status is PutStatus.CREATED
            [childs] = _kept(client)
            ok = created and childs is not parents and childs.pid == os.getpid()
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.put(topic, "parent-again", b"").status is PutStatus.CREATED
    assert _kept(client) == [parents]
    assert {j.id for j in client.reserve_many(topic, 10)} == {"parent", "child", "parent-again"}


def test_a_blocking_pools_connection_goes_back_after_each_call(
    redis_url: str, topic: str
) -> None:  # fmt: skip
    pool = redis.BlockingConnectionPool.from_url(redis_url, max_connections=1, timeout=0.5)
    conn = redis.Redis(connection_pool=pool)
    client = redisched.Client(conn, keep_connections=True)
    try:
        client.put(topic, "a", b"")
        assert _kept(client) == []
        assert conn.ping()  # the pool's one connection is free for its other users
    finally:
        conn.close()


async def test_the_async_client_keeps_a_connection_per_concurrent_call(
    redis_url: str, topic: str
) -> None:  # fmt: skip
    conn = redis.asyncio.Redis.from_url(redis_url)
    client = redisched.AsyncClient(conn, keep_connections=True)
    # the topic's registration and script loads first: their connection, taken from the pool
    # outside the wire, is not kept (and was left unused when it came back after the burst)
    await client.put(topic, "warm", b"x")
    tasks = 20
    results = await asyncio.gather(
        *(client.put(topic, f"j{i}", b"x") for i in range(tasks))
    )  # fmt: skip
    assert [r.status for r in results] == [PutStatus.CREATED] * tasks
    kept = len(_kept(client))
    pool = conn.connection_pool
    assert 1 <= kept == len(pool._in_use_connections) + len(pool._available_connections) <= tasks
    for i in range(10):  # one at a time: one connection serves them all
        await client.put(topic, f"k{i}", b"x")
    assert len(_kept(client)) == kept
    await client.close()
    assert _kept(client) == []
