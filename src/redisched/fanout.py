"""Reading something of every topic without running the connection pool dry."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

# redis-py's asyncio pool holds 100 connections at most, shared with the long polls and the
# background loops; a server with hundreds of topics must not take them all at once.
AT_ONCE = 32


async def per_topic(names: Sequence[str], read: Callable[[str], Awaitable[T]]) -> list[T]:
    """``read(name)`` for every name, in order, :data:`AT_ONCE` calls in flight at most."""
    results: list[T] = []
    for start in range(0, len(names), AT_ONCE):
        results += await asyncio.gather(*(read(name) for name in names[start : start + AT_ONCE]))
    return results
