"""``execute(call, retry_for=...)``: a caller that met a failure already tries once."""

from __future__ import annotations

import time

import pytest
import redis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

import redisched
from redisched import BackendError, InvalidArgument

NO_RETRY = Retry(NoBackoff(), 0)  # redis-py's own retries off: the clients' are measured


def _gone() -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=NO_RETRY)


def test_a_call_given_retry_for_0_fails_at_once_and_others_keep_the_clients() -> None:
    client = redisched.Client(_gone(), retry_for=3)
    started = time.monotonic()
    with pytest.raises(BackendError):
        client.execute(client.ops.stats("t"), retry_for=0)
    assert time.monotonic() - started < 1.5
    started = time.monotonic()
    with pytest.raises(BackendError):
        client.execute(client.ops.stats("t"))  # the client's 3 s
    # it gives up when its next backoff (at most 1 s) would pass the 3 s: after 2 s at least
    assert time.monotonic() - started >= 1.5


async def test_the_async_client_takes_it_too() -> None:
    gone = redis.asyncio.Redis(host="127.0.0.1", port=1, retry=AsyncRetry(NoBackoff(), 0))
    client = redisched.AsyncClient(gone, retry_for=3)
    started = time.monotonic()
    with pytest.raises(BackendError):
        await client.execute(client.ops.stats("t"), retry_for=0)
    assert time.monotonic() - started < 1.5
    with pytest.raises(InvalidArgument, match="retry_for"):
        await client.execute(client.ops.stats("t"), retry_for=-1)
    await client.close()
