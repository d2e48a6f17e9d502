"""Probes of the kept connections of redisched.wire (review)."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest
import redis
import redis.asyncio
from redis._parsers import _HiredisParser
from redis.backoff import NoBackoff
from redis.retry import Retry

import redisched
from redisched import wire
from redisched.models import PutStatus


@contextmanager
def _client(redis_url: str, **pool_options: Any) -> Iterator[redisched.Client]:
    """A keeping client on a pool of its test's own (a pool passed in is not closed with its
    client: the test closes both)."""
    pool = redis.ConnectionPool.from_url(redis_url, **pool_options)
    client = redisched.Client(redis.Redis(connection_pool=pool), keep_connections=True)
    try:
        yield client
    finally:
        client.close()
        pool.disconnect()


@asynccontextmanager
async def _async_client(
    redis_url: str, keep: bool | None = True, **pool_options: Any
) -> AsyncIterator[redisched.AsyncClient]:  # fmt: skip
    """As :func:`_client`, for the asyncio client (``keep``: ``keep_connections``; None:
    the client's default)."""
    pool = redis.asyncio.ConnectionPool.from_url(redis_url, **pool_options)
    options = {} if keep is None else {"keep_connections": keep}
    client = redisched.AsyncClient(redis.asyncio.Redis(connection_pool=pool), **options)
    try:
        yield client
    finally:
        await client.close()
        await pool.disconnect()


def test_a_limited_pool_still_serves_other_commands_after_a_script_call(
    redis_url: str, topic: str
) -> None:  # fmt: skip
    with _client(redis_url, max_connections=1) as client:
        assert client.put(topic, "a", b"x").status is PutStatus.CREATED
        assert client.get(topic, "a") is not None
        assert client.redis.ping()


async def test_a_limited_async_pool_still_serves_other_commands_after_a_script_call(
    redis_url: str, topic: str
) -> None:  # fmt: skip
    async with _async_client(redis_url, max_connections=1) as client:
        assert (await client.put(topic, "a", b"x")).status is PutStatus.CREATED
        assert await client.get(topic, "a") is not None
        assert await client.redis.ping()


def test_the_wire_keeps_at_most_half_the_pools_limit(redis_url: str, topic: str) -> None:
    with _client(redis_url, max_connections=4) as client:
        pool = client.redis.connection_pool
        held = [pool.get_connection() for _ in range(2)]  # the application's own, in use
        assert client.put(topic, "a", b"x").status is PutStatus.CREATED
        assert client._wire is not None and client._wire._kept.idle == []  # 3 of 4 in use
        for connection in held:
            pool.release(connection)
        assert client.put(topic, "b", b"x").status is PutStatus.CREATED
        assert len(client._wire._kept.idle) == 1  # 1 of 4 in use: kept


async def test_a_reset_async_pool_leaves_the_client_working_and_closable(
    redis_url: str, topic: str
) -> None:  # fmt: skip
    async with _async_client(redis_url) as client:
        pool = client.redis.connection_pool
        await client.put(topic, "a", b"x")
        assert client._wire is not None
        [forgotten] = client._wire._kept.idle
        pool.reset()  # the pool no longer knows the kept connection
        assert (await client.put(topic, "b", b"x")).status is PutStatus.CREATED
        assert forgotten not in client._wire._kept.idle and not forgotten.is_connected
        pool.reset()
        await client.close()  # gave back nothing the pool does not know (no KeyError)
        assert client._wire._kept.idle == []


def test_a_reset_pool_leaves_no_kept_connection_open(
    redis_url: str, raw_redis: redis.Redis, topic: str
) -> None:  # fmt: skip
    with _client(redis_url) as client:
        client.put(topic, "a", b"x")
        assert client._wire is not None
        [forgotten] = client._wire._kept.idle
        client.redis.connection_pool.reset()
        assert client.put(topic, "b", b"x").status is PutStatus.CREATED
        assert forgotten._sock is None  # closed, not left connected to the server


async def test_a_burst_outside_the_wire_can_use_the_kept_connections(
    redis_url: str, topic: str
) -> None:  # fmt: skip
    # New topics' first puts go through redis-py (registration), which lends from the pool:
    # with the wire keeping half the limit, a burst of them needs the kept ones too.
    async with _async_client(redis_url, max_connections=10) as client:
        await client.put(topic, "first", b"x")  # the topic registered: the next are direct
        await asyncio.gather(*(client.put(topic, f"a{i}", b"x") for i in range(5)))
        assert client._wire is not None and len(client._wire._kept.idle) == 5
        results = await asyncio.gather(
            *(client.put(f"{topic}-{i}", "b", b"x") for i in range(10))
        )  # fmt: skip
        assert [r.status for r in results] == [PutStatus.CREATED] * 10


def test_a_command_outside_the_wire_can_use_the_kept_connection(
    redis_url: str, topic: str
) -> None:  # fmt: skip
    with _client(redis_url, max_connections=2) as client:
        pool = client.redis.connection_pool
        client.put(topic, "a", b"x")
        assert client._wire is not None and len(client._wire._kept.idle) == 1
        held = pool.get_connection()  # the application's own, in use: none left but the kept
        try:
            assert client.put(f"{topic}-new", "b", b"x").status is PutStatus.CREATED
        finally:
            pool.release(held)


def test_a_client_keeps_connections_only_from_a_pool_of_its_own(
    redis_url: str, topic: str
) -> None:  # fmt: skip
    conn = redis.Redis.from_url(redis_url)
    shared = redisched.Client(conn)  # the application's connection: its pool may be full
    own = redisched.Client.from_url(redis_url)
    try:
        shared.put(topic, "a", b"x")
        own.put(topic, "b", b"x")
        assert shared._wire is not None and shared._wire._kept.idle == []
        assert own._wire is not None and len(own._wire._kept.idle) == 1
        assert not conn.connection_pool._in_use_connections
    finally:
        own.close()
        conn.close()


async def test_the_applications_own_commands_keep_the_whole_shared_pool(
    redis_url: str, topic: str
) -> None:  # fmt: skip
    # (found by review) as many of the application's commands at a time as the pool's limit,
    # on the connection it gave the client: kept connections would take their places
    async with _async_client(redis_url, keep=None, max_connections=4) as client:
        conn = client.redis  # the application's, given to a client made without from_url
        for i in range(5):
            await asyncio.gather(*(client.put(topic, f"a{i}-{j}", b"x") for j in range(2)))
            assert await asyncio.gather(*(conn.get(f"k{j}") for j in range(4))) == [None] * 4
        assert not conn.connection_pool._in_use_connections


def test_a_kept_connection_is_reused_without_the_pools_check_while_nothing_waits_on_it(
    redis_url: str, topic: str, monkeypatch: Any
) -> None:  # fmt: skip
    # the pool's ensure_connection costs ~6 µs of CPU a call: a quiet kept connection skips it
    with _client(redis_url) as client:
        client.put(topic, "a", b"x")
        checks: list[Any] = []
        pool = client.redis.connection_pool
        original = pool.ensure_connection
        monkeypatch.setattr(pool, "ensure_connection", lambda c: checks.append(c) or original(c))
        for i in range(5):
            assert client.put(topic, f"b{i}", b"x").status is PutStatus.CREATED
        assert checks == []


@contextmanager
def _one_kept(redis_url: str, topic: str) -> Iterator[tuple[redisched.Client, Any]]:
    """A keeping client that put job "a", and the one connection its wire kept."""
    with _client(redis_url) as client:
        client.put(topic, "a", b"x")
        assert client._wire is not None
        [kept] = client._wire._kept.idle
        yield client, kept


def test_a_kept_connection_holding_an_unread_reply_is_checked_by_the_pool(
    redis_url: str, topic: str
) -> None:  # fmt: skip
    with _one_kept(redis_url, topic) as (client, kept):
        kept.send_command("PING")  # a reply nobody reads: the next call must not take it
        assert kept._sock.recv(1, socket.MSG_PEEK)  # (blocks until the reply has arrived)
        put = client.put(topic, "b", b"x")
        assert put.status is PutStatus.CREATED and put.version == 1
        assert [job.id for job in client.reserve_many(topic, 10)] == ["a", "b"]


def test_a_kept_connection_whose_reply_waits_in_its_parser_is_checked_by_the_pool(
    redis_url: str, topic: str
) -> None:  # fmt: skip
    with _one_kept(redis_url, topic) as (client, kept):
        kept._parser._reader.feed(b"+PONG\r\n")  # read from the socket, not yet taken
        put = client.put(topic, "b", b"x")
        assert put.status is PutStatus.CREATED and put.version == 1


def test_a_kept_connection_whose_socket_was_closed_under_it_is_reconnected(
    redis_url: str, topic: str
) -> None:  # fmt: skip
    # the state pool.disconnect() from another thread can leave for a moment: a closed
    # socket still set on the connection (review: the poll's register raised ValueError and
    # the connection was lost to the pool)
    with _one_kept(redis_url, topic) as (client, kept):
        assert client._wire is not None
        client._wire._kept.watched.clear()  # the next check makes its poll afresh
        kept._sock.close()
        assert client.put(topic, "b", b"x").status is PutStatus.CREATED
        pool = client.redis.connection_pool
        assert len(pool._in_use_connections) == 1 and client._wire._kept.idle == [kept]


SPIN = (  # a script that answers after ARGV[1] µs; meanwhile the server reads nothing
    "local t = redis.call('TIME') local s = t[1] * 1e6 + t[2]"
    " repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] - s > tonumber(ARGV[1]) return 1"
)
SPUN = 300_000  # µs: the usual spin


def _reused(conn: redis.Redis) -> tuple[wire.Wire, Any]:
    """A keeping wire of ``conn`` that sent twice, and the connection it kept."""
    link = wire.Wire(conn)
    one = conn.script_load("return 1")
    assert link.send([("EVALSHA", one, 0)]) == [1]  # redis-py's path: a new connection
    assert link.send([("EVALSHA", one, 0)]) == [1]  # kept and ready: the wire's own
    [kept] = link._kept.idle
    return link, kept


def _refuse(connection: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``connection``'s redis-py write and read fail the test when called."""

    def refused(method: str) -> Any:
        return lambda *args, **kwargs: pytest.fail(f"{method} called")

    for method in ("send_packed_command", "read_response"):
        monkeypatch.setattr(connection, method, refused(method))


def _failure(call: Any) -> str:
    try:
        call()
    except Exception as exc:  # the test compares whatever was raised
        return f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
    return "no failure"


def test_a_ready_kept_connection_writes_and_reads_without_redis_pys_layers(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # fmt: skip
    conn = redis.Redis.from_url(redis_url)
    link, kept = _reused(conn)
    _refuse(kept, monkeypatch)
    mixed = [
        ("EVALSHA", conn.script_load("return {1, 'two', {3}}"), 0),
        ("EVALSHA", conn.script_load("return redis.error_reply('ERR boom')"), 0),
        ("EVALSHA", "0" * 40, 0),
        ("EVALSHA", conn.script_load("return redis.status_reply('FINE')"), 0),
        ("EVALSHA", conn.script_load("return false"), 0),
        ("EVALSHA", conn.script_load("return string.rep('x', 200000)"), 0),  # many reads
    ]
    try:
        replies = link.send(mixed)
        assert isinstance(replies, list) and link._kept.idle == [kept]
        monkeypatch.undo()
        expected = conn.pipeline(transaction=False)
        for command in mixed:
            expected.execute_command(*command)
        through_redis_py = expected.execute(raise_on_error=False)
        assert [repr(reply) for reply in replies] == [repr(r) for r in through_redis_py]
        assert replies[0] == [1, b"two", [3]] and replies[5] == b"x" * 200000
        assert type(replies[1]) is redis.exceptions.ResponseError
        assert type(replies[2]) is redis.exceptions.NoScriptError
    finally:
        link.close()
        conn.close()


@pytest.mark.parametrize("nested", [False, True], ids=["reply", "in an array"])
@pytest.mark.parametrize("retries", [0, 2])
def test_an_error_reply_redis_py_raises_as_a_connection_error_is_raised(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, retries: int, nested: bool
) -> None:  # fmt: skip
    conn = redis.Redis.from_url(redis_url, retry=Retry(NoBackoff(), retries))
    link, kept = _reused(conn)
    _refuse(kept, monkeypatch)
    error = "redis.error_reply('ERR max number of clients reached')"
    full = conn.script_load(f"return {{{error}}}" if nested else f"return {error}")
    try:
        if retries:
            assert link.send([("EVALSHA", full, 0)]) is wire.AGAIN
        else:
            with pytest.raises(redis.exceptions.ConnectionError, match="max number of clients"):
                link.send([("EVALSHA", full, 0)])
        assert link._kept.idle == [] and kept._sock is None  # dropped, as redis-py drops it
    finally:
        link.close()
        conn.close()


def test_a_read_that_times_out_fails_as_redis_pys_would(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # fmt: skip
    conn = redis.Redis.from_url(redis_url, socket_timeout=0.1, retry=Retry(NoBackoff(), 0))
    spin = conn.script_load(SPIN)
    try:
        by_redis_py = _failure(lambda: conn.evalsha(spin, 0, SPUN))
        time.sleep(0.35)  # the script ends
        link, kept = _reused(conn)
        _refuse(kept, monkeypatch)
        started = time.monotonic()
        assert _failure(lambda: link.send([("EVALSHA", spin, 0, SPUN)])) == by_redis_py
        assert time.monotonic() - started < 0.25  # the 0.1 s timeout, not the script's 0.3 s
        assert "Timeout reading from 127.0.0.1:" in by_redis_py
        assert link._kept.idle == [] and kept._sock is None  # dropped
        time.sleep(0.35)
        monkeypatch.undo()
        assert link.send([("EVALSHA", conn.script_load("return 1"), 0)]) == [1]
        link.close()
    finally:
        conn.close()


def _stalled(redis_url: str) -> threading.Thread:
    """A thread that keeps the server busy (reading nothing) for 1.5 s, started: packing a
    64 MiB command alone takes 100-200 ms (review: 300 ms was too short)."""
    conn = redis.Redis.from_url(redis_url)
    spin = conn.script_load(SPIN)
    thread = threading.Thread(target=lambda: conn.evalsha(spin, 0, 1_500_000) and conn.close())
    thread.start()
    time.sleep(0.05)
    return thread


def test_a_write_that_times_out_or_fails_fails_as_redis_pys_would(
    redis_url: str, raw_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:  # fmt: skip
    big = b"x" * (64 << 20)  # more than the sockets' buffers hold
    conn = redis.Redis.from_url(redis_url, socket_timeout=0.1, retry=Retry(NoBackoff(), 0))
    one = conn.script_load("return 1")
    limit = raw_redis.config_get("client-query-buffer-limit")["client-query-buffer-limit"]

    def failure(path: str, stall: bool) -> str:
        link, kept = _reused(conn)
        if path == "wire":
            _refuse(kept, monkeypatch)
        else:
            link.close()  # redis-py's own call takes the connection from the pool
        stalled = _stalled(redis_url) if stall else None
        try:
            if path == "wire":
                return _failure(lambda: link.send([("EVALSHA", one, 0, big)]))
            return _failure(lambda: conn.evalsha(one, 0, big))
        finally:
            if stalled is not None:
                stalled.join()
            monkeypatch.undo()
            link.close()

    try:
        timeouts = [failure(path, stall=True) for path in ("redis-py", "wire")]
        raw_redis.config_set("client-query-buffer-limit", "1mb")  # the server drops us
        refusals = [failure(path, stall=False) for path in ("redis-py", "wire")]
    finally:
        raw_redis.config_set("client-query-buffer-limit", limit)
        conn.close()
    assert timeouts == ["redis.exceptions.TimeoutError: Timeout writing to socket"] * 2
    # the server's close makes the write fail with EPIPE or ECONNRESET, as the timing falls
    worded = r"redis\.exceptions\.ConnectionError: Error (32|104) while writing to socket\. \w.*\."
    assert all(re.fullmatch(worded, refusal) for refusal in refusals), refusals


def test_a_call_on_a_kept_connection_ends_when_the_pool_disconnects(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # fmt: skip
    conn = redis.Redis.from_url(redis_url, retry=Retry(NoBackoff(), 0))
    spin = conn.script_load(SPIN)
    link, kept = _reused(conn)
    _refuse(kept, monkeypatch)
    try:
        timer = threading.Timer(0.05, conn.connection_pool.disconnect)
        timer.start()
        started = time.monotonic()
        with pytest.raises(redis.exceptions.ConnectionError):
            link.send([("EVALSHA", spin, 0, SPUN)])
        assert time.monotonic() - started < 0.25  # woken by the shutdown, not the script's end
        timer.join()
    finally:
        link.close()
        conn.close()


def test_a_kept_connection_with_a_health_check_keeps_redis_pys_layers(redis_url: str) -> None:
    conn = redis.Redis.from_url(redis_url, health_check_interval=30)
    link, kept = _reused(conn)
    reads: list[int] = []
    original = kept.read_response
    kept.read_response = lambda *a, **k: reads.append(1) or original(*a, **k)
    try:
        assert link.send([("EVALSHA", conn.script_load("return 3"), 0)]) == [3]
        assert reads == [1]
    finally:
        link.close()
        conn.close()


def test_a_kept_connection_whose_parser_reads_its_own_way_keeps_redis_pys_layers(
    redis_url: str,
) -> None:  # fmt: skip
    reads: list[int] = []

    class Counting(_HiredisParser):  # type: ignore[misc]
        def read_response(self, *args: Any, **kwargs: Any) -> Any:
            reads.append(1)
            return super().read_response(*args, **kwargs)

    conn = redis.Redis.from_url(redis_url, parser_class=Counting)
    link, _ = _reused(conn)
    three = conn.script_load("return 3")
    reads.clear()
    try:
        assert link.send([("EVALSHA", three, 0)]) == [3]
        assert reads == [1]
    finally:
        link.close()
        conn.close()


def test_a_resp3_push_read_before_a_reply_goes_to_redis_pys_handler(
    redis_url: str, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # fmt: skip
    conn = redis.Redis.from_url(redis_url, protocol=3)
    link, kept = _reused(conn)
    key = f"{topic}:tracked"
    kept.send_command("CLIENT", "TRACKING", "ON")
    assert kept.read_response() in (b"OK", "OK")
    kept.send_command("GET", key)  # the server now tells this connection when key changes
    assert kept.read_response() is None
    pushed: list[Any] = []
    kept._parser.set_invalidation_push_handler(pushed.append)  # redis-py's handler calls it
    _refuse(kept, monkeypatch)
    write = conn.script_load("redis.call('SET', KEYS[1], 'v') return 7")
    try:  # the invalidation is written before the script's reply, on the same connection
        assert link.send([("EVALSHA", write, 1, key), ("EVALSHA", write, 1, key)]) == [7, 7]
        assert [list(push) for push in pushed] == [[b"invalidate", [key.encode()]]]
        assert link._kept.idle == [kept]
    finally:
        link.close()
        conn.close()


def test_a_reply_cut_short_by_the_server_fails_as_redis_pys_would(
    redis_url: str, raw_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:  # fmt: skip
    # the server closes a connection whose reply exceeds its output buffer limit
    limits = raw_redis.config_get("client-output-buffer-limit")["client-output-buffer-limit"]
    conn = redis.Redis.from_url(redis_url, retry=Retry(NoBackoff(), 0))
    huge = conn.script_load("return string.rep('x', 4000000)")
    raw_redis.config_set("client-output-buffer-limit", "normal 1mb 0 0")
    try:
        by_redis_py = _failure(lambda: conn.evalsha(huge, 0))
        link, kept = _reused(conn)
        _refuse(kept, monkeypatch)
        assert _failure(lambda: link.send([("EVALSHA", huge, 0)])) == by_redis_py
        assert by_redis_py.startswith("redis.exceptions.ConnectionError: ")
        assert link._kept.idle == [] and kept._sock is None
        link.close()
    finally:
        raw_redis.config_set("client-output-buffer-limit", limits)
        conn.close()


def test_socket_errors_are_worded_as_redis_pys(redis_url: str) -> None:
    conn = redis.Redis.from_url(redis_url)
    connection = conn.connection_pool.make_connection()
    host = f"{connection.host}:{connection.port}"
    reset, timed_out = ConnectionResetError(104, "Connection reset by peer"), TimeoutError()
    dead = TimeoutError(110, "Connection timed out")  # ETIMEDOUT from the system
    worded = {
        (repr(exc), written): f"{type(error).__name__}: {error}"
        for exc in (reset, timed_out, dead, OSError("odd"))
        for written in (False, True)
        for error in [wire._redis_error(exc, connection, written)]
    }
    assert worded == {
        (repr(reset), False): "ConnectionError: Error 104 while writing to socket. Connection "
        "reset by peer.",
        (repr(reset), True): f"ConnectionError: Error while reading from {host} : (104, "
        "'Connection reset by peer')",
        (repr(timed_out), False): "TimeoutError: Timeout writing to socket",
        (repr(timed_out), True): f"TimeoutError: Timeout reading from {host}",
        (repr(dead), False): "ConnectionError: Error 110 while writing to socket. Connection "
        "timed out.",
        (repr(dead), True): "ConnectionError: Error while reading from socket: (110, "
        "'Connection timed out')",
        (repr(OSError("odd")), False): "ConnectionError: Error UNKNOWN while writing to socket. "
        "odd.",
        (repr(OSError("odd")), True): f"ConnectionError: Error while reading from {host} : "
        "('odd',)",
    }
    error = redis.exceptions.ResponseError("not the socket's")
    assert wire._redis_error(error, connection, True) is error
    conn.close()


class _Overriding(redis.Connection):
    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        self.reads = getattr(self, "reads", 0) + 1
        return super().read_response(*args, **kwargs)


def test_a_connection_class_that_reads_its_own_way_keeps_redis_pys_layers(
    redis_url: str,
) -> None:  # fmt: skip
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=_Overriding)
    conn = redis.Redis(connection_pool=pool)
    link, kept = _reused(conn)
    three = conn.script_load("return 3")
    try:
        before = kept.reads
        assert link.send([("EVALSHA", three, 0)]) == [3]
        assert kept.reads == before + 1
    finally:
        link.close()
        pool.disconnect()


def test_a_kept_connection_disconnected_after_its_check_is_reconnected_by_redis_py(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:  # fmt: skip
    # pool.disconnect() in another thread between the wire's check and its write
    conn = redis.Redis.from_url(redis_url, retry=Retry(NoBackoff(), 0))
    link, kept = _reused(conn)
    ready = wire._ready

    def disconnected_after(kept_: Any, connection: Any) -> Any:
        watch = ready(kept_, connection)
        connection.disconnect()
        return watch

    monkeypatch.setattr(wire, "_ready", disconnected_after)
    try:
        assert link.send([("EVALSHA", conn.script_load("return 4"), 0)]) == [4]
        assert kept._sock is not None  # connected again
    finally:
        link.close()
        conn.close()


def test_a_kept_connection_marked_for_reconnection_is_given_back_before_its_next_call(
    redis_url: str,
) -> None:  # fmt: skip
    conn = redis.Redis.from_url(redis_url)
    link, kept = _reused(conn)
    five, marked = conn.script_load("return 5"), kept._sock
    kept.mark_for_reconnect()  # as a maintenance notice (MOVING) marks it
    try:
        assert link.send([("EVALSHA", five, 0)]) == [5]
        [now] = link._kept.idle  # the pool's release disconnected it: a new socket
        assert now._sock is not marked and marked.fileno() == -1 and not now.should_reconnect()
    finally:
        link.close()
        conn.close()
