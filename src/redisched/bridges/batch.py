"""Batching for bridges (no I/O): split a batch into rounds and join each topic's commands.

A round holds each (topic, id) at most once, so that messages for one id keep their order
across rounds. Within a round, one topic's commands become one :class:`~redisched.ops.Call`:
puts with equal options share a ``put_many`` script call, the rest get a call each, and all
of them travel in a single pipeline (one round trip).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any, NamedTuple, TypeVar

from ..ops import Call, Operations
from .messages import Delete, Put, PutOptions

__all__ = ["Applied", "join", "rounds"]

T = TypeVar("T", bound=tuple[Any, Put | Delete])


def rounds(items: Sequence[T]) -> list[list[T]]:
    """Split ``(message, command)`` items, in order, into rounds with no (topic, id) twice."""
    result: list[list[T]] = []
    seen: set[tuple[str, str]] = set()
    for item in items:
        key = (item[1].topic, item[1].id)
        if not result or key in seen:
            result.append([])
            seen = set()
        seen.add(key)
        result[-1].append(item)
    return result


def by_topic(items: Sequence[T]) -> list[list[T]]:
    """The items grouped by their command's topic, in order of first appearance."""
    groups: dict[str, list[T]] = defaultdict(list)
    for item in items:
        groups[item[1].topic].append(item)
    return list(groups.values())


class Applied(NamedTuple):
    """What one topic's joined commands did."""

    puts: int
    deletes: int
    missed: tuple[str, ...]
    """The ids of the deletes that found no job."""


def join(ops: Operations, commands: Sequence[Put | Delete]) -> Call[Applied]:
    """One call for commands of one topic with distinct ids."""
    topic = commands[0].topic
    puts: dict[PutOptions, list[Put]] = defaultdict(list)
    deletes: list[Delete] = []
    for command in commands:
        if command.topic != topic:
            raise ValueError("join takes the commands of one topic")
        if isinstance(command, Put):
            puts[command.options].append(command)
        else:
            deletes.append(command)
    calls: list[Call[Any]] = [
        ops.put_many(
            topic, [(put.id, put.body) for put in group], delay=options.delay,
            run_at=options.run_at, ttr=options.ttr, priority=options.priority,
            max_attempts=options.max_attempts, replace=options.replace,
        )
        for options, group in puts.items()
    ]  # fmt: skip
    calls += [ops.delete(topic, delete.id) for delete in deletes]
    first_delete = len(puts)

    def applied(results: list[Any]) -> Applied:
        found = results[first_delete:]
        missed = tuple(d.id for d, hit in zip(deletes, found, strict=True) if not hit)
        return Applied(len(commands) - len(deletes), len(deletes), missed)

    # Each part checks its own replies; durable puts make the whole round trip wait (WAIT).
    return Call.join(*calls).map(applied)
