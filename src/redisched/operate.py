"""Operations that take several round trips (purge, delete_topic), written once for both clients.

Each is a generator over :class:`~redisched.ops.Operations`: it yields the calls to run and
receives their results, as :func:`redisched.protocol.conversation` does with commands.
``Client`` and ``AsyncClient`` drive it with their own I/O and hold no logic of their own.
Every call is bounded (a purge deletes :data:`~redisched.ops.PURGE_CHUNK` jobs per script), so
Redis serves other clients between them.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, TypeVar

from .errors import InvalidArgument, TopicBusy
from .keys import (
    deleted_topics_key,
    partition_name,
    partition_owner,
    partitions_key,
    topics_key,
)
from .models import JobState, TopicStats
from .ops import PURGE_CHUNK, Call, Operations, Step
from .partition_counts import mark, read_count, read_counts
from .registration import DELETIONS_KEPT_SECONDS

T = TypeVar("T")
Flow = Generator[Call[Any], Any, T]
"""A multi-call operation: yields calls, receives each one's result, returns its own."""
Progress = Callable[[int, int], None]
"""Called after each chunk with (jobs done so far, jobs left)."""


def _check_progress(progress: object) -> None:
    """Refuse a ``progress`` that is not callable before the first chunk is deleted (else
    the first chunk goes and only then the call fails, half done)."""
    if progress is not None and not callable(progress):
        kind = type(progress).__name__
        raise InvalidArgument("progress", f"must be a function (done, left) or None, not {kind}")


def purge(
    ops: Operations,
    topic: str,
    state: object,
    *,
    progress: Progress | None = None,
    force: bool = False,
    chunk: int = PURGE_CHUNK,
) -> Flow[int]:
    """Delete every job in ``state``, ``chunk`` at a time; how many were deleted."""
    _check_progress(progress)
    call = ops.purge_chunk(topic, state, limit=chunk, force=force)  # checks before any I/O
    total = 0
    while True:
        deleted, left, before, up_to_seq = yield call
        total += int(deleted)
        if progress is not None:
            progress(total, left)
        if deleted < chunk or left == 0:
            return total
        call = ops.purge_chunk(
            topic, state, limit=chunk, force=force, before=before, up_to_seq=up_to_seq
        )


def delete_topic(
    ops: Operations, topic: str, *, force: object = False, progress: Progress | None = None
) -> Flow[int]:
    """Delete a topic: its jobs (in chunks), settings, counters and every other key, and
    when it is partitioned its partitions too (the partition count goes last).

    Refused with TopicBusy while jobs are reserved in it or any partition, unless ``force``:
    then the reserved jobs are purged last (catching any reserved meanwhile), and purge.lua
    tells each holder to stop (``c<token>:<id>`` on the wake channel), so running handlers
    are cancelled. The jobs of every partition go first, the keys after: without ``force``, a
    job reserved meanwhile is a TopicBusy too, with the topic and every partition left with
    their settings, pause and count (and the reserved job). A partition of a partitioned
    topic is refused (InvalidArgument naming ``topic``): it goes with its topic. The counts
    are read afresh, so a topic another process partitioned a moment before loses its
    partitions too; one partitioned while a plain topic's delete runs keeps its count, its
    mark and its partitions. How many jobs it held.
    """
    if not isinstance(force, bool):
        raise InvalidArgument("force", f"must be a bool, not {type(force).__name__}")
    _check_progress(progress)
    ops.keys(topic)  # a bad name fails before any I/O
    counts = yield read_counts(ops)
    owner = partition_owner(topic, counts)
    if owner is not None:
        raise InvalidArgument(
            "topic",
            f"{topic!r} is a partition of {owner[0]!r}: delete {owner[0]!r}, which deletes "
            "every partition",
        )
    count = counts.get(topic)
    names = [*(partition_name(topic, index) for index in range(count or 0)), topic]
    every = yield _stats_of(ops, names)
    reserved = sum(stats.reserved for stats in every)
    if reserved and not force:
        raise TopicBusy(topic, reserved)
    total = sum(s.scheduled + s.ready + s.dead + (s.reserved if force else 0) for s in every)
    done = 0

    def report(deleted: int, left: int) -> None:
        if progress is not None:
            progress(done + deleted, max(0, total - done - deleted))

    states = [JobState.SCHEDULED, JobState.READY, JobState.DEAD]
    if force:
        states.append(JobState.RESERVED)
    for name in names:
        for state in states:
            done += yield from purge(ops, name, state, progress=report, force=True)
    if not force:
        # a worker may have reserved a job while the others went: the last step deletes every
        # key, and would take it from under its holder untold (force cancels such jobs above)
        reserved = sum(stats.reserved for stats in (yield _stats_of(ops, names)))
        if reserved:
            raise TopicBusy(topic, reserved)
    now_ms = round((yield ops.server_time_ms()))  # the clock every deletion is scored by
    forget = [step for name in names for step in _forget(ops, name, now_ms)]
    forget += ops.forget_deletions(now_ms - round(DELETIONS_KEPT_SECONDS * 1000)).steps
    if count is not None:  # read here: a count set elsewhere meanwhile is not this delete's
        forget.append(Step(None, (), ("HDEL", partitions_key(ops.prefix), topic)))
    yield Call(tuple(forget), lambda r: None)
    if count is None:
        yield from _keep_mark(ops, topic)
    return done


def _stats_of(ops: Operations, names: list[str]) -> Call[list[TopicStats]]:
    return Call.join(*(ops.stats(name, own=True) for name in names))


def _forget(ops: Operations, topic: str, now_ms: int) -> tuple[Step, ...]:
    """The steps that delete an emptied topic's keys and its name."""
    return (
        Step(None, (), ("DEL", *ops.topic_key_names(topic), ops.keys(topic).name("throughput"))),
        Step(None, (), ("SREM", topics_key(ops.prefix), topic)),
        # the requeue sweep adds it back if a put overtook this (redisched.registration)
        Step(None, (), ("ZADD", deleted_topics_key(ops.prefix), now_ms, topic)),
    )


def _keep_mark(ops: Operations, topic: str) -> Flow[None]:
    """After a plain topic's keys went: when another process partitioned it meanwhile, its
    mark (in the topic's meta hash, just deleted) is written again, so that puts into the
    topic itself go on being refused (section 11 of docs/design.md)."""
    count = yield read_count(ops, topic)
    if count is not None:
        yield mark(ops, topic, count)
