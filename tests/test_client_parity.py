"""Client and AsyncClient expose the same methods with the same signatures."""

from __future__ import annotations

import contextlib
import inspect

import pytest

import redisched


def _public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


ASYNC_ONLY = {"aclose"}
"""AsyncClient's ``close`` by asyncio's name for it (contextlib.aclosing)."""


def test_same_methods_same_signatures() -> None:
    sync, asynchronous = _public(redisched.Client), _public(redisched.AsyncClient)
    assert set(sync) == set(asynchronous) - ASYNC_ONLY
    for name in sync:
        assert str(sync[name]) == str(asynchronous[name]), name


def test_async_methods_are_coroutines() -> None:
    for name in _public(redisched.AsyncClient):
        assert inspect.iscoroutinefunction(getattr(redisched.AsyncClient, name)), name


async def test_aclosing_closes_the_async_client(redis_url: str) -> None:
    async with contextlib.aclosing(redisched.AsyncClient.from_url(redis_url)) as client:
        await client.put("parity", "j", b"x")
    with pytest.raises(redisched.ClientClosed):
        await client.get("parity", "j")
