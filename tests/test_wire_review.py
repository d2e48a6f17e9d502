"""Review of redisched.wire (review5): behaviours the wire path changed."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest
import redis
import redis.connection
import redis.sentinel

import redisched
from redisched import wire
from redisched.errors import BackendError


def _known_topic(client: redisched.Client, topic: str) -> None:
    # so that a put is a direct (one EVALSHA) call, the path wire.send takes
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
    client = redisched.Client(gone)
    if not use_wire:
        client._wire = None
    _known_topic(client, "t")
    with pytest.raises(BackendError):
        client.put("t", "a", b"")
    return attempts[0]


def test_a_server_that_is_gone_costs_one_round_of_connect_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # wire.send's get_connection() already connects with redis-py's retries; its AGAIN then
    # makes execute_command connect (and retry) all over again: twice the attempts and time
    # before a one-server client (retry_for 0) reports the outage.
    assert _connect_attempts(monkeypatch, True) == _connect_attempts(monkeypatch, False)


def test_a_full_blocking_pool_is_waited_for_once(redis_url: str, topic: str) -> None:
    pool = redis.BlockingConnectionPool.from_url(redis_url, max_connections=1, timeout=0.5)
    conn = redis.Redis(connection_pool=pool)
    client = redisched.Client(conn)
    assert client._wire is conn
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
    # when wire.send releases the connection; the next command then reads them as its own.
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
            wire.send(conn, [("EVALSHA", fast, 0, "one"), ("EVALSHA", slow, 0)])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    try:
        assert wire.send(conn, [("EVALSHA", fast, 0, "mine")]) == [b"mine"]
    finally:
        conn.close()
