"""Reading something of every topic without running the connection pool dry."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from .errors import BackendError

T = TypeVar("T")
log = logging.getLogger(__name__)

# redis-py's asyncio pool holds 100 connections at most, shared with the long polls and the
# background loops; a server with hundreds of topics must not take them all at once.
AT_ONCE = 32


async def per_topic(names: Sequence[str], read: Callable[[str], Awaitable[T]]) -> list[T]:
    """``read(name)`` for every name, in order, :data:`AT_ONCE` calls in flight at most."""
    results: list[T] = []
    for start in range(0, len(names), AT_ONCE):
        results += await asyncio.gather(*(read(name) for name in names[start : start + AT_ONCE]))
    return results


async def or_none(read: Awaitable[T], what: str) -> T | None:
    """What ``read`` answers, or None when Redis cannot serve it now (a BackendError, logged
    naming ``what``)."""
    try:
        return await read
    except BackendError as exc:
        log.warning("could not read %s: %s", what, exc)
        return None


async def readable(
    names: Sequence[str], read: Callable[[str], Awaitable[T]], reader: str
) -> list[T | None]:
    """As :func:`per_topic`, with None for a name Redis cannot serve now (:func:`or_none`): on
    a Redis Cluster, a topic whose primary is down made the whole page or scrape fail (503),
    exactly while it mattered; ``reader`` names the reader in the log."""
    return await per_topic(names, lambda name: or_none(read(name), f"{reader}: topic {name!r}"))
