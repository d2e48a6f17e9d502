"""Client and AsyncClient expose the same methods with the same signatures."""

from __future__ import annotations

import inspect

import redisched


def _public(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_same_methods_same_signatures() -> None:
    sync, asynchronous = _public(redisched.Client), _public(redisched.AsyncClient)
    assert set(sync) == set(asynchronous)
    for name in sync:
        assert str(sync[name]) == str(asynchronous[name]), name


def test_async_methods_are_coroutines() -> None:
    for name in _public(redisched.AsyncClient):
        assert inspect.iscoroutinefunction(getattr(redisched.AsyncClient, name)), name
