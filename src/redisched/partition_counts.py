"""The calls that read and mark partition counts (no I/O, no client).

A topic's count is kept in ``<prefix>:partitions`` (see :mod:`redisched.partition_setting`)
and, as its mark, in the topic's own meta hash. These calls live apart so that both the
setting's flows and :func:`redisched.operate.delete_topic` build them from one place.
"""

from __future__ import annotations

from .keys import partitions_key
from .ops import Call, Operations, Step


def decode(value: object) -> str:
    """A Redis reply's bytes as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def read_counts(ops: Operations) -> Call[dict[str, int]]:
    """Every partitioned topic's count (one ``HGETALL``)."""
    step = Step(None, (), ("HGETALL", partitions_key(ops.prefix)))
    return Call((step,), lambda r: {decode(k): int(decode(v)) for k, v in r[0].items()})


def read_count(ops: Operations, topic: str) -> Call[int | None]:
    """The topic's partition count, or None when it is not partitioned."""
    ops.keys(topic)  # a bad name fails before any I/O
    step = Step(None, (), ("HGET", partitions_key(ops.prefix), topic))
    return Call((step,), lambda r: None if r[0] is None else int(decode(r[0])))


def mark(ops: Operations, topic: str, count: int) -> Call[None]:
    """Mark the topic's own meta hash with its count: put.lua and schedule.lua then refuse
    to store into the topic itself (TopicPartitioned), so a process that has not read the
    count yet learns it from the refusal instead of making a second job of an id beside the
    one in its partition."""
    step = Step(None, (), ("HSET", ops.keys(topic).name("meta"), "partitions", count))
    return Call((step,), lambda r: None)


__all__ = ["decode", "mark", "read_count", "read_counts"]
