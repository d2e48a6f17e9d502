"""Partitioned topics: one hot topic spread over N partitions, each its own cluster slot.

A topic's keys share one hash tag, so one topic lives on one cluster node. A topic declared
with ``N`` partitions is stored as N ordinary topics named ``<topic>~p<i>`` (``i`` from 0),
each under its own hash tag, so the partitions spread over the cluster's masters.

- **By id, one call**: a job's partition is ``crc32(id as UTF-8) mod N`` (zlib's CRC-32,
  which every language has), so ``put``, ``get`` and ``delete`` by id go to one partition, on
  one node, in one round trip. A reserved job's ``topic`` is its partition's name, so ``ack``,
  ``release``, ``touch`` and ``bury`` go straight to it, through the plain client.
- **Reserve draws fairly**: each reserve starts at the next partition in turn and moves on
  while it needs more jobs, so while every partition has due work, each serves the same number
  of reserves. ``lease`` merges the partitions' ``next_due`` and ``next_timeout`` (earliest).
- **A partition Redis cannot serve is passed over**: one whose lease fails (its Cluster
  primary down) is skipped for 30 s and the reserve goes on with the others
  (:class:`Sweep`, shared with the HTTP service's reserves); BackendError only when every
  partition failed.
- **The topic itself is reserved from too**: a job put into ``<topic>`` by a process that did
  not know the count yet (it trusts the counts it read for up to 5 s), by a plain client, or
  by a schedule of the topic itself stays there; one reserve in ``N + 1`` visits the topic
  first, the others last (:meth:`Partitions.visits`), and the partitions keep their turns.
- **Ordering**: within a partition, the usual order holds (priority, then run_at, then
  insertion). Across partitions there is none: a job due earlier or with a better priority in
  one partition may be reserved after a job of another. Jobs with the same id always share a
  partition, so replace, compare-and-set and delete by id keep their meaning.
- **N is fixed**: changing it would move ids to other partitions. :meth:`PartitionedTopic.declare`
  records N in Redis (``<prefix>:partitions``, a hash) and refuses another N later.

N is also a topic setting (:mod:`redisched.partition_setting`): set through the HTTP API or
``redisched config TOPIC --set partitions=N``, it makes the HTTP routes, the CLI, the
dashboard, Workers and the push dispatcher treat ``<topic>`` as its partitions.
``Worker(client, {topic: handler})`` serves every partition of a topic partitioned when the
Worker starts.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from . import validate
from .errors import BackendError, InvalidArgument
from .keys import MAX_TOPIC_LENGTH, PARTITION_SEPARATOR, partition_name, validate_topic
from .models import Job, Lease, PutResult, Schedule, TopicStats
from .ops import Call, Operations
from .topic_config import MAX_PARTITIONS as MAX_PARTITIONS
from .topic_config import partitions_count
from .unreachable import Unreachable

if TYPE_CHECKING:  # the clients import this module (through partition_setting)
    from .client import AsyncClient, Client

SEPARATOR = PARTITION_SEPARATOR


def partition_of(job_id: str, partitions: int) -> int:
    """The partition of ``job_id``: CRC-32 of its UTF-8 bytes, modulo ``partitions``."""
    try:
        data = job_id.encode("utf-8")
    except UnicodeEncodeError:  # a raw script call's id that is not UTF-8: its bytes
        data = job_id.encode("utf-8", "surrogateescape")
    return zlib.crc32(data) % partitions


@dataclass
class Partitions:
    """The I/O-free part: partition names, routing by id, the rotating start of reserves.

    Args:
        topic: the partitioned topic's name.
        count: how many partitions (1 to 1024).
    """

    topic: str
    count: int
    _next: int = field(default=0, repr=False)
    _own_turn: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        validate_topic(self.topic)
        self.count = partitions_count(self.count)
        longest = f"{self.topic}{SEPARATOR}{self.count - 1}"
        if len(longest) > MAX_TOPIC_LENGTH:
            raise InvalidArgument("topic", f"{longest!r} would be longer than {MAX_TOPIC_LENGTH}")

    @property
    def names(self) -> list[str]:
        """Every partition's topic name, in order."""
        return [self.name(i) for i in range(self.count)]

    def name(self, index: int) -> str:
        """The topic name of partition ``index``."""
        return partition_name(self.topic, index)

    def route(self, job_id: str) -> str:
        """The partition (topic name) holding ``job_id``."""
        return self.name(partition_of(validate.stored_text(job_id), self.count))

    def schedule_holders(self, schedule_id: str) -> list[str]:
        """The topics that may hold schedule ``schedule_id``: its id's partition (where the
        HTTP API, the CLI and PartitionedTopic make one), then the topic itself (one made on it
        before it was partitioned, docs/design.md section 11)."""
        return [self.route(schedule_id), self.topic]

    def find_schedule(self, ops: Operations, schedule_id: str) -> Call[Schedule | None]:
        """Read schedule ``schedule_id`` where it may be, in one round trip (None: nowhere)."""
        holders = self.schedule_holders(schedule_id)
        reads = [ops.get_schedule(name, schedule_id, own=True) for name in holders]
        return Call.join(*reads).map(lambda found: next((s for s in found if s), None))

    def group(
        self, jobs: Iterable[tuple[str, bytes | str]], max_body_size: int
    ) -> dict[str, list[tuple[int, str, bytes]]]:
        """``(position, id, body)`` of each job, grouped by partition, in order within each;
        every id and body checked (InvalidArgument naming the job by its place in ``jobs``)."""
        if isinstance(jobs, (str, bytes)):
            raise InvalidArgument("jobs", "must be an iterable of (id, body) pairs")
        groups: dict[str, list[tuple[int, str, bytes]]] = {}
        try:
            for index, item in enumerate(jobs):
                if not isinstance(item, tuple) or len(item) != 2:
                    raise InvalidArgument(f"jobs[{index}]", "must be an (id, body) pair")
                job_id = validate.new_job_id(item[0], f"jobs[{index}].id")
                data = validate.body(item[1], max_body_size, f"jobs[{index}].body")
                name = self.name(partition_of(job_id, self.count))  # route() without a 2nd check
                groups.setdefault(name, []).append((index, job_id, data))
        except TypeError as exc:
            raise InvalidArgument("jobs", "must be an iterable of (id, body) pairs") from exc
        return groups

    def put_many_calls(
        self, ops: Operations, jobs: Iterable[tuple[str, bytes | str]], options: dict[str, Any]
    ) -> list[tuple[list[int], Call[list[PutResult]]]]:
        """Each partition's put_many call, with the positions in ``jobs`` of its jobs: all
        made, so every job and option checked, before any is sent (a bad job of a later
        partition was found after the earlier partitions' jobs were stored)."""
        return [
            ([position for position, _, _ in group],
             ops.put_many(name, [(i, b) for _, i, b in group], **options))
            for name, group in self.group(jobs, ops.max_body_size).items()
        ]  # fmt: skip

    def rotation(self) -> list[str]:
        """The partitions in the order the next reserve visits them (the start moves on)."""
        start, self._next = self._next, (self._next + 1) % self.count
        return [self.name((start + i) % self.count) for i in range(self.count)]

    def visits(self) -> list[str]:
        """The topics the next reserve visits, in order: the partitions from the one whose
        turn it is (:meth:`rotation`), and the topic itself, first in one reserve out of
        ``count + 1`` and last in the others.

        The topic holds only jobs put by processes that did not know the count yet (or by a
        plain client, or a schedule of the topic itself). Going first that often, ahead of a
        partition whose turn changes from round to round, it is served like one more
        partition while it has due jobs; when it has none, the partitions' turns are those of
        :meth:`rotation`.
        """
        order = self.rotation()
        first, self._own_turn = self._own_turn == 0, (self._own_turn + 1) % (self.count + 1)
        return [self.topic, *order] if first else [*order, self.topic]


class Leased(Protocol):
    """What one partition's lease gave (a :class:`~redisched.models.Lease`, or the HTTP
    service's :class:`~redisched.leasing.Round`)."""

    @property
    def jobs(self) -> Sequence[Job]:
        """The jobs leased."""


L = TypeVar("L", bound=Leased)


class Sweep(Generic[L]):
    """The I/O-free part of one lease across a topic's partitions and the topic itself, which
    :class:`PartitionedTopic`, :class:`AsyncPartitionedTopic` and the HTTP service's reserves
    share: the order of :meth:`Partitions.visits`, as long as jobs are wanted.

    A partition Redis cannot serve (a BackendError: its Cluster primary down) is passed over,
    and for ``unreachable.period`` after (each try waits out the client's ``retry_for``): the
    lease went no further although the other partitions had jobs. Another failure after some
    jobs were leased ends the sweep with those (they are not stranded). :meth:`leases` raises
    only when no partition answered.

    Usage, one line of I/O per partition::

        sweep = Sweep(partitions, count, unreachable)
        for name in sweep:
            with sweep.visiting(name):
                call = client.ops.lease(name, sweep.left, own=True)
                sweep.took(name, client.execute(call, retry_for=sweep.retry_for(name)))
        leases = sweep.leases()

    Args:
        partitions: the topic's layout (its turn moves on).
        want: how many jobs to lease.
        unreachable: the topics that failed lately (updated by the sweep).
    """

    def __init__(self, partitions: Partitions, want: int, unreachable: Unreachable) -> None:
        self.partitions = partitions
        self.left = want
        self.unreachable = unreachable
        self.failure: BackendError | None = None
        self.stopped = False
        self._leases: list[L] = []

    def __iter__(self) -> Iterator[str]:
        for name in self.partitions.visits():
            if self.left <= 0 or self.stopped:
                return
            if not self.unreachable.skipped(name):
                yield name

    @contextlib.contextmanager
    def visiting(self, name: str) -> Iterator[None]:
        """Around the lease of ``name``: a BackendError marks it unreachable and the sweep goes
        on; another error ends the sweep when jobs were leased already, else is raised."""
        try:
            yield
        except BackendError as exc:
            self.unreachable.failed(name)
            self.failure = self.failure or exc
        except Exception:
            if not any(lease.jobs for lease in self._leases):
                raise
            self.stopped = True

    def retry_for(self, name: str) -> float | None:
        """How long the lease of ``name`` retries through connection errors: not at all once
        a partition failed in this sweep (the outage is known: it costs one ``retry_for``, not
        one per partition on the lost node) or when ``name`` is tried again after its period
        (:meth:`~redisched.unreachable.Unreachable.probing`); else the client's (None)."""
        return 0 if self.failure is not None or self.unreachable.probing(name) else None

    def took(self, name: str, lease: L) -> None:
        """``name`` answered with ``lease``."""
        self.unreachable.answered(name)
        self._leases.append(lease)
        self.left -= len(lease.jobs)

    def leases(self) -> list[L]:
        """Every lease taken; BackendError when no partition answered."""
        if not self._leases:
            topic = self.partitions.topic
            raise self.failure or BackendError(f"no partition of {topic!r} is reachable")
        return self._leases


def merge_leases(leases: Sequence[Lease]) -> Lease:
    """One Lease from the partitions' leases: all jobs, the earliest next due / timeout."""
    jobs = [job for lease in leases for job in lease.jobs]
    dues = [lease.next_due_ms for lease in leases if lease.next_due_ms is not None]
    timeouts = [lease.next_timeout_ms for lease in leases if lease.next_timeout_ms is not None]
    return Lease(
        jobs=jobs,
        now_ms=max(lease.now_ms for lease in leases),
        next_due_ms=min(dues, default=None),
        next_timeout_ms=min(timeouts, default=None),
    )


def merge_stats(topic: str, stats: Sequence[TopicStats]) -> TopicStats:
    """The partitions' stats added up (paused if any partition is; the earliest next due):
    every count, so a count added to TopicStats is added up here with no list to keep."""
    dues = [s.next_due for s in stats if s.next_due is not None]
    counts = {name: sum(getattr(s, name) for s in stats) for name in _COUNTS}
    return TopicStats(
        topic=topic,
        paused=any(s.paused for s in stats),
        next_due=min(dues, default=None),
        **counts,
    )


_COUNTS = [f.name for f in fields(TopicStats) if f.name not in ("topic", "paused", "next_due")]


class PartitionedTopic:
    """A topic spread over partitions, through a blocking :class:`~redisched.Client`.

    Args:
        client: the client (on a cluster, the partitions spread over its masters).
        topic: the topic's name.
        partitions: how many partitions; must be the same for every user of the topic.
    """

    def __init__(self, client: Client, topic: str, partitions: int) -> None:
        self.client = client
        self.partitions = Partitions(topic, partitions)
        self.unreachable = Unreachable()

    @property
    def names(self) -> list[str]:
        """Every partition's topic name (give each a handler to run a Worker on them)."""
        return self.partitions.names

    @property
    def count(self) -> int:
        """How many partitions."""
        return self.partitions.count

    def declare(self) -> PartitionedTopic:
        """Set the topic's ``partitions`` setting (copying its settings to the partitions);
        InvalidArgument if another count is set, or the topic holds jobs of its own."""
        from . import partition_setting  # it builds on this module

        flow = partition_setting.set_count(self.client.ops, self.partitions.topic, self.count)
        partition_setting.run(self.client, flow)
        return self

    def put(self, id: str, body: bytes | str, **options: Any) -> PutResult:
        """Put a job into its id's partition; options as :meth:`Client.put`."""
        return self.client.put(self.partitions.route(id), id, body, **options)

    def put_many(self, jobs: Iterable[tuple[str, bytes | str]], **options: Any) -> list[PutResult]:
        """Put many jobs, one call per partition; results in the order of ``jobs``."""
        results: dict[int, PutResult] = {}
        for positions, call in self.partitions.put_many_calls(self.client.ops, jobs, options):
            done = self.client.execute(call)
            results.update(zip(positions, done, strict=True))
        return [results[position] for position in range(len(results))]

    def get(self, id: str) -> Job | None:
        """The job with this id (one call, to its partition), or None."""
        return self.client.get(self.partitions.route(id), id)

    def delete(self, id: str, *, if_version: int | None = None) -> bool:
        """Delete a job by id (one call, to its partition); True if it existed."""
        return self.client.delete(self.partitions.route(id), id, if_version=if_version)

    def lease(self, count: int, *, ttr: float | Any = None) -> Lease:
        """Lease up to ``count`` jobs, starting at the next partition in turn (the topic
        itself is visited too: :meth:`Partitions.visits`); a partition Redis cannot serve is
        passed over for a while (:class:`Sweep`), BackendError when none answered."""
        sweep: Sweep[Lease] = Sweep(self.partitions, validate.count(count), self.unreachable)
        for name in sweep:
            with sweep.visiting(name):
                call = self.client.ops.lease(name, sweep.left, ttr=ttr, own=True)
                sweep.took(name, self.client.execute(call, retry_for=sweep.retry_for(name)))
        return merge_leases(sweep.leases())

    def reserve(self, *, ttr: float | Any = None) -> Job | None:
        """Lease the next due job from the partition whose turn it is (or the next one)."""
        return next(iter(self.lease(1, ttr=ttr).jobs), None)

    def reserve_many(self, count: int, *, ttr: float | Any = None) -> list[Job]:
        """Lease up to ``count`` due jobs across partitions."""
        return self.lease(count, ttr=ttr).jobs

    def schedule(self, id: str, body: bytes | str, **options: Any) -> Schedule:
        """Create a recurring schedule in its id's partition, where the HTTP API and the CLI
        make it, or replace it where it lives (one made on the topic before it was partitioned
        stays there: one call more finds it); options as :meth:`Client.schedule`."""
        from .partition_setting import schedule_holder  # it builds on this module

        where = self.client.execute(schedule_holder(self.client.ops, self.partitions, id))
        return self.client.schedule(where, id, body, **options)

    def get_schedule(self, id: str) -> Schedule | None:
        """A schedule by id, or None; one call to where it may live
        (:meth:`Partitions.schedule_holders`; its ``topic`` says which)."""
        return self.client.execute(self.partitions.find_schedule(self.client.ops, id))

    def unschedule(self, id: str, *, if_version: int | None = None) -> bool:
        """Delete a schedule and its pending occurrence where it lives; True if it existed."""
        from .partition_setting import schedule_holder  # it builds on this module

        where = self.client.execute(schedule_holder(self.client.ops, self.partitions, id))
        ops = self.client.ops
        return self.client.execute(ops.unschedule(where, id, if_version=if_version, own=True))

    def schedules(self) -> list[Schedule]:
        """Every schedule of the topic, its partitions' and its own, sorted by id."""
        from . import partition_setting  # it builds on this module

        flow = partition_setting.all_schedules(self.client.ops, self.partitions.topic, self.count)
        return partition_setting.run(self.client, flow)

    def stats(self) -> TopicStats:
        """The counts of the topic itself and its partitions added up."""
        topic = self.partitions.topic
        own = [
            self.client.execute(self.client.ops.stats(n, own=True)) for n in [topic, *self.names]
        ]
        return merge_stats(topic, own)


class AsyncPartitionedTopic:
    """The asyncio twin of :class:`PartitionedTopic`, through an :class:`~redisched.AsyncClient`."""

    def __init__(self, client: AsyncClient, topic: str, partitions: int) -> None:
        self.client = client
        self.partitions = Partitions(topic, partitions)
        self.unreachable = Unreachable()

    @property
    def names(self) -> list[str]:
        """Every partition's topic name (give each a handler to run a Worker on them)."""
        return self.partitions.names

    @property
    def count(self) -> int:
        """How many partitions."""
        return self.partitions.count

    async def declare(self) -> AsyncPartitionedTopic:
        """Set the topic's ``partitions`` setting (copying its settings to the partitions);
        InvalidArgument if another count is set, or the topic holds jobs of its own."""
        from . import partition_setting  # it builds on this module

        flow = partition_setting.set_count(self.client.ops, self.partitions.topic, self.count)
        await partition_setting.run_async(self.client, flow)
        return self

    async def put(self, id: str, body: bytes | str, **options: Any) -> PutResult:
        """Put a job into its id's partition; options as :meth:`AsyncClient.put`."""
        return await self.client.put(self.partitions.route(id), id, body, **options)

    async def put_many(
        self, jobs: Iterable[tuple[str, bytes | str]], **options: Any
    ) -> list[PutResult]:
        """Put many jobs, one call per partition; results in the order of ``jobs``."""
        results: dict[int, PutResult] = {}
        for positions, call in self.partitions.put_many_calls(self.client.ops, jobs, options):
            done = await self.client.execute(call)
            results.update(zip(positions, done, strict=True))
        return [results[position] for position in range(len(results))]

    async def get(self, id: str) -> Job | None:
        """The job with this id (one call, to its partition), or None."""
        return await self.client.get(self.partitions.route(id), id)

    async def delete(self, id: str, *, if_version: int | None = None) -> bool:
        """Delete a job by id (one call, to its partition); True if it existed."""
        return await self.client.delete(self.partitions.route(id), id, if_version=if_version)

    async def lease(self, count: int, *, ttr: float | Any = None) -> Lease:
        """Lease up to ``count`` jobs, starting at the next partition in turn (the topic
        itself is visited too: :meth:`Partitions.visits`); a partition Redis cannot serve is
        passed over for a while (:class:`Sweep`), BackendError when none answered."""
        sweep: Sweep[Lease] = Sweep(self.partitions, validate.count(count), self.unreachable)
        for name in sweep:
            with sweep.visiting(name):
                call = self.client.ops.lease(name, sweep.left, ttr=ttr, own=True)
                lease = await self.client.execute(call, retry_for=sweep.retry_for(name))
                sweep.took(name, lease)
        return merge_leases(sweep.leases())

    async def reserve(self, *, ttr: float | Any = None) -> Job | None:
        """Lease the next due job from the partition whose turn it is (or the next one)."""
        return next(iter((await self.lease(1, ttr=ttr)).jobs), None)

    async def reserve_many(self, count: int, *, ttr: float | Any = None) -> list[Job]:
        """Lease up to ``count`` due jobs across partitions."""
        return (await self.lease(count, ttr=ttr)).jobs

    async def schedule(self, id: str, body: bytes | str, **options: Any) -> Schedule:
        """As :meth:`PartitionedTopic.schedule`."""
        from .partition_setting import schedule_holder  # it builds on this module

        where = await self.client.execute(schedule_holder(self.client.ops, self.partitions, id))
        return await self.client.schedule(where, id, body, **options)

    async def get_schedule(self, id: str) -> Schedule | None:
        """As :meth:`PartitionedTopic.get_schedule`."""
        return await self.client.execute(self.partitions.find_schedule(self.client.ops, id))

    async def unschedule(self, id: str, *, if_version: int | None = None) -> bool:
        """As :meth:`PartitionedTopic.unschedule`."""
        from .partition_setting import schedule_holder  # it builds on this module

        where = await self.client.execute(schedule_holder(self.client.ops, self.partitions, id))
        ops = self.client.ops
        return await self.client.execute(ops.unschedule(where, id, if_version=if_version, own=True))

    async def schedules(self) -> list[Schedule]:
        """As :meth:`PartitionedTopic.schedules`."""
        from . import partition_setting  # it builds on this module

        flow = partition_setting.all_schedules(self.client.ops, self.partitions.topic, self.count)
        return await partition_setting.run_async(self.client, flow)

    async def stats(self) -> TopicStats:
        """The counts of the topic itself and its partitions added up."""
        topic = self.partitions.topic
        ops = self.client.ops
        own = [await self.client.execute(ops.stats(n, own=True)) for n in [topic, *self.names]]
        return merge_stats(topic, own)
