"""Partitioned topics over HTTP: by-id routes go to the id's partition, reserves rotate.

The layouts come from the runtime's :class:`~redisched.partition_setting.PartitionMap`, so a
route on a topic that is not partitioned pays a dict lookup. A path naming a partition
(``orders~p3``, the ``topic`` of a reserved job) is an ordinary topic and goes straight to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar, cast

from starlette.requests import Request

from ..errors import StaleReservation, TopicPartitioned
from ..leasing import Lessee, Round
from ..ops import Call
from ..partition_setting import (
    holder,
    holders,
    read_count,
    refuse_misrouted,
    schedule_holder,
)
from ..partitions import SEPARATOR, Partitions, Sweep
from .paths import path_param
from .runtime import Runtime, runtime

T = TypeVar("T")


async def layout(rt: Runtime, topic: str) -> Partitions | None:
    """The topic's partitions, or None when it is not partitioned."""
    return (await rt.partitions.current(rt.client)).get(topic)


async def schedule_route(rt: Runtime, topic: str, schedule_id: str) -> str:
    """The topic holding schedule ``schedule_id``: when ``topic`` is partitioned, the first
    of :meth:`~redisched.partitions.Partitions.schedule_holders` that holds it (one call more),
    else its id's partition, where a new schedule goes."""
    found = await layout(rt, topic)
    if found is None:
        return topic
    return await rt.client.execute(schedule_holder(rt.client.ops, found, schedule_id))


async def route(
    rt: Runtime, topic: str, job_id: str, *, itself: bool = False, finished: bool = False
) -> str:
    """The topic holding ``job_id``: its partition when ``topic`` is partitioned (for an id
    with an ``@``, or any id with ``itself``, where
    :func:`~redisched.partition_setting.holders` finds it: one more call); ``finished``: a
    finished job's record counts as holding it (for its history)."""
    found = await layout(rt, topic)
    if found is None:
        return topic
    names = holders(found, job_id, itself=itself)
    if len(names) == 1:
        return names[0]
    hashes = ("jobs", "history") if finished else ("jobs",)
    return await rt.client.execute(holder(rt.client.ops, names, job_id, hashes))


async def put_routed(
    rt: Runtime,
    topic: str,
    put: Callable[[str], Awaitable[T]],
    again: Callable[[], Awaitable[str]],
) -> T:
    """``put(topic)``; when Redis refuses it (TopicPartitioned: another process partitioned
    the topic since this one read the counts), the count is learnt from the refusal and the
    put made on ``again()``, the topic routed anew."""
    try:
        return await put(topic)
    except TopicPartitioned as refused:
        rt.partitions.learn(refused.topic, refused.count)
        return await put(await again())


async def refuse_misrouted_put(rt: Runtime, topic: str, job_id: str, kind: str = "job") -> None:
    """400 naming ``id`` for a put of ``job_id`` into ``topic``, a partition of a partitioned
    topic, when the id routes to another partition (a second job of the id would be made)."""
    if SEPARATOR not in topic:
        return
    layout = (await rt.partitions.current(rt.client)).owner(topic)
    if layout is not None:
        refuse_misrouted(layout, topic, job_id, kind)


async def job_path(request: Request, rt: Runtime | None = None) -> tuple[str, str]:
    """``(topic, id)`` of a by-id route: the id's partition when the path names a
    partitioned topic, else the topic of the path (``rt``: the request's runtime)."""
    topic, job_id = path_param(request, "topic"), path_param(request, "id", stored=True)
    if rt is None:
        rt = runtime(request)
    found = (await rt.partitions.current(rt.client)).get(topic)  # :func:`route`, inlined
    if found is None:
        return topic, job_id
    if "@" in job_id:
        return await route(rt, topic, job_id), job_id
    return found.route(job_id), job_id


async def holding(
    request: Request, routed: str, action: Callable[[str], Awaitable[T]]
) -> tuple[str, T]:
    """``(topic, action(topic))`` for a token operation on the path's job: on ``routed``
    (from :func:`job_path`), or, when that raises StaleReservation, as :func:`held_elsewhere`
    says. A reservation found costs nothing more; a stale one, one more call."""
    try:
        return routed, await action(routed)
    except StaleReservation as missed:
        return await held_elsewhere(request, routed, missed, action)


async def held_elsewhere(
    request: Request, routed: str, missed: StaleReservation, action: Callable[[str], Awaitable[T]]
) -> tuple[str, T]:
    """After ``action(routed)`` raised ``missed``: when ``routed`` is a partition of the topic
    the path names, ``action`` on that topic itself, which holds the jobs put by a process
    that did not know the count yet (and reserved from it); when ``routed`` is the path's
    topic, on the id's partition if :func:`partitioned_since` finds one. ``missed`` stands
    when that refuses too."""
    elsewhere = await _elsewhere(request, routed, None)
    if elsewhere is None:
        raise missed
    try:
        return elsewhere, await action(elsewhere)
    except StaleReservation:
        raise missed from None


async def finding(
    request: Request,
    routed: str,
    action: Callable[[str], Awaitable[T]],
    job_id: str | None = None,
) -> tuple[str, T]:
    """``(topic, action(topic))`` for a lookup of the path's job (or of ``job_id``) that
    answers a falsy value when the job is missing: on ``routed``, or after a miss there as
    :func:`found_elsewhere` says."""
    found = await missing_is_falsy(request, action, routed)
    if found:
        return routed, found
    return await found_elsewhere(request, routed, found, action, job_id)


async def missing_is_falsy(request: Request, action: Callable[[str], Awaitable[T]], name: str) -> T:
    """``action(name)``, or False when it raises TopicPartitioned: a read or delete by id
    in a topic itself that finds no such job when the topic is partitioned (get.lua,
    history, delete.lua say so rather than answer a miss). A miss it is here: the count is
    learnt from the refusal, and :func:`partitioned_since` finds the id's partition (or,
    when ``name`` is the topic itself after a miss in a partition, its jobs are there)."""
    try:
        return await action(name)
    except TopicPartitioned as refused:
        runtime(request).partitions.learn(refused.topic, refused.count)
        return cast(T, False)


async def found_elsewhere(
    request: Request,
    routed: str,
    missed: T,
    action: Callable[[str], Awaitable[T]],
    job_id: str | None = None,
) -> tuple[str, T]:
    """After ``action(routed)`` answered ``missed`` (falsy: no such job): as
    :func:`held_elsewhere`, the topic itself is asked when ``routed`` is a partition of it,
    and the id's partition when ``routed`` is the topic and :func:`partitioned_since` finds
    one; ``(routed, missed)`` when that has no such job either."""
    elsewhere = await _elsewhere(request, routed, job_id)
    if elsewhere is None:
        return routed, missed
    again = await missing_is_falsy(request, action, elsewhere)
    return (elsewhere, again) if again else (routed, missed)


async def _elsewhere(request: Request, routed: str, job_id: str | None) -> str | None:
    """Where else the path's job may be after a miss on ``routed``: the path's topic itself
    when ``routed`` is one of its partitions, else the id's partition when the topic has been
    partitioned since this process read the counts, else None."""
    itself = path_param(request, "topic")
    if itself != routed:
        return itself
    if job_id is None:
        job_id = path_param(request, "id", stored=True)
    return await partitioned_since(runtime(request), itself, job_id)


async def partitioned_since(rt: Runtime, topic: str, job_id: str) -> str | None:
    """The partition of ``topic`` that holds ``job_id`` when another process partitioned
    the topic since this one read the counts (up to
    :data:`~redisched.partition_setting.REFRESH` seconds ago), else None.

    Called after a miss in the topic itself: unless this process knows the count by now
    (another request learnt it since this one was routed), it is read afresh (one call), so
    a get, a delete or a token operation made in that window finds the job a fresh process
    put into its partition, instead of answering 404 or stale."""
    if rt.partitions.get(topic) is None:  # else learnt since this request was routed
        count = await rt.client.execute(read_count(rt.client.ops, topic))
        if count is None:
            return None
        rt.partitions.learn(topic, count)
    moved = await route(rt, topic, job_id, finished=True)
    return None if moved == topic else moved


async def each_partition(rt: Runtime, topic: str, action: Callable[[str], Awaitable[int]]) -> int:
    """``action`` on the topic and each of its partitions; the results added up."""
    found = await layout(rt, topic)
    names = [topic] if found is None else [topic, *found.names]
    return sum([await action(name) for name in names])


async def up_to(
    rt: Runtime, topic: str, limit: int, action: Callable[[str, int], Awaitable[int]]
) -> int:
    """``action(name, what is left of limit)`` on the topic, then each partition, until
    ``limit`` is reached; the results added up."""
    found = await layout(rt, topic)
    done = 0
    for name in [topic] if found is None else [topic, *found.names]:
        done += await action(name, limit - done)
        if done >= limit:
            break
    return done


async def by_partition(
    rt: Runtime, topic: str, ids: Sequence[str], action: Callable[[str, list[str]], Awaitable[int]]
) -> int:
    """``action(partition, its ids)`` for the ids grouped by partition; the results added up.
    An id with an ``@`` (a schedule's occurrence, which lives with its schedule) goes where
    :func:`~redisched.partition_setting.holders` finds it: one round trip for all of them."""
    found = await layout(rt, topic)
    if found is None:
        return await action(topic, list(ids))
    occurrences = [job_id for job_id in ids if "@" in job_id]
    homes: dict[str, str] = {}
    if occurrences:
        ops = rt.client.ops
        calls = [holder(ops, holders(found, o), o) for o in occurrences]
        held: list[str] = await rt.client.execute(Call.join(*calls))
        homes = dict(zip(occurrences, held, strict=True))
    groups: dict[str, list[str]] = {}
    for job_id in ids:
        groups.setdefault(homes.get(job_id) or found.route(job_id), []).append(job_id)
    return sum([await action(name, group) for name, group in groups.items()])


async def delete_topic(rt: Runtime, topic: str, force: bool) -> int:
    """Delete a topic and its partitions (:meth:`~redisched.AsyncClient.delete_topic`, which
    reads the counts afresh); this process forgets the topic's count."""
    deleted = await rt.client.delete_topic(topic, force=force)
    rt.partitions.learn(topic, None)  # only once deleted: a busy topic stays partitioned
    return deleted


class Lessees:
    """What a long poll needs of a :class:`~redisched.leasing.Lessee`, over every partition
    and the topic itself.

    Each exchange starts at the partition whose turn it is (the turn is kept per process in
    the topic's layout) and moves on while it needs jobs; the topic itself, which holds the
    jobs put by a process that did not know the count yet, is visited first in one exchange
    out of N + 1 and last in the others (:meth:`~redisched.partitions.Partitions.visits`). A
    wake-up of any of them wakes the poll (the lessees share one ``kick`` event).
    """

    def __init__(self, rt: Runtime, found: Partitions, ttr: float | None) -> None:
        self.layout = found
        self.unreachable = rt.unreachable
        self.kick = asyncio.Event()
        self.lessees: dict[str, Lessee] = {}
        for name in [found.topic, *found.names]:
            lessee = Lessee(rt.client, name, rt.wakeups, ttr=ttr, limits=rt.limits, clock=rt.clock)
            lessee.kick = self.kick
            self.lessees[name] = lessee
        self.first = self.lessees[found.topic]

    @property
    def freed(self) -> list[str]:
        """Slots granted but not used, waiting to be given back."""
        return [slot for lessee in self.lessees.values() for slot in lessee.freed]

    async def watch(self) -> None:
        """Subscribe to every partition's wake-ups."""
        for lessee in self.lessees.values():
            await lessee.watch()

    async def close(self) -> None:
        """Stop forwarding wake-ups."""
        for lessee in self.lessees.values():
            await lessee.close()

    async def flush(self) -> None:
        """Give back unused slots."""
        for lessee in self.lessees.values():
            if lessee.freed:
                await lessee.flush()

    async def exchange(self, want: int) -> Round:
        """Lease up to ``want`` jobs, partition after partition from the one whose turn it is
        (and from the topic itself, first or last).

        As :class:`~redisched.partitions.Sweep` says: a partition Redis cannot serve (its
        Cluster primary down) is passed over for a while, a failure after some jobs were
        leased answers with those, BackendError only when no partition answered.
        """
        sweep: Sweep[Round] = Sweep(self.layout, want, self.unreachable)
        for name in sweep:
            with sweep.visiting(name):
                lessee = self.lessees[name]
                sweep.took(name, await lessee.exchange(sweep.left, sweep.retry_for(name)))
        return merge_rounds(want, sweep.leases())

    async def sleep(self, result: Round, *, until: float | None = None) -> None:
        """Sleep until a partition or the topic has work (see :meth:`Lessee.sleep`)."""
        await self.first.sleep(result, until=until)


def merge_rounds(want: int, rounds: Sequence[Round]) -> Round:
    """One Round of several partitions': every job, the earliest times."""

    def earliest(values: list[int | None]) -> int | None:
        return min((v for v in values if v is not None), default=None)

    return Round(
        want,
        [job for r in rounds for job in r.jobs],
        [flag for r in rounds for flag in r.acked],
        [job for r in rounds for job in r.done],
        now_ms=max((r.now_ms for r in rounds if r.now_ms is not None), default=None),
        next_due_ms=earliest([r.next_due_ms for r in rounds]),
        next_timeout_ms=earliest([r.next_timeout_ms for r in rounds]),
        retry_ms=earliest([r.retry_ms for r in rounds]),
    )


def lessee(
    rt: Runtime, topic: str, found: Partitions | None, ttr: float | None
) -> Lessee | Lessees:
    """The lessee of a reserve on ``topic`` (whose :func:`layout` is ``found``): one Lessee,
    or Lessees over its partitions and itself."""
    if found is None:
        return Lessee(rt.client, topic, rt.wakeups, ttr=ttr, limits=rt.limits, clock=rt.clock)
    return Lessees(rt, found, ttr)
