"""The ``partitions`` topic setting: how many partitions a topic is spread over.

A topic's partition count is recorded in one hash for every topic (``<prefix>:partitions``,
see :mod:`redisched.partitions`), so a process reads all of them with one ``HGETALL`` and
keeps them (:class:`PartitionMap`): a call on a topic that is not partitioned pays a dict
lookup, never a round trip.

- **Set once**: the count may be set while the topic holds no job, and never changed or
  removed afterwards, since ids would move to other partitions.
- **Settings follow**: the scripts read a topic's defaults (ttr, max_attempts, backoff) from
  the topic's own meta hash, so setting the count copies the topic's settings to every
  partition, and each later change of the topic's settings (and pause, resume) is made to the
  topic and every partition in one round trip. The push dispatcher and Workers then see the
  topic's webhook, limits and defaults on each partition. ``concurrency`` and ``rate`` are
  held per partition (a topic of N partitions may run N times ``concurrency`` jobs at once).
- **Other processes** read the counts again every :data:`REFRESH` seconds (in the
  background); the process that sets the count knows it at once, and marks the topic's own
  meta hash with it (field ``partitions``), where put.lua and schedule.lua read it: from then
  on a put or schedule into the topic itself is refused (:class:`~redisched.TopicPartitioned`,
  nothing stored), and the HTTP service and the AMQP bridge learn the count from the refusal
  and put into the id's partition. A job put into the topic itself before the mark (the
  moment between the check that the topic is empty and the mark) is still reserved
  (:meth:`~redisched.partitions.Partitions.visits`).

Every multi-call operation is a :data:`~redisched.operate.Flow` over
:class:`~redisched.ops.Operations`, driven by :func:`run` or :func:`run_async`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from . import topic_config, validate
from .errors import InvalidArgument
from .keys import partition_owner, partitions_key, topics_key
from .models import HistoryPage, JobPage, Schedule, Timeline, TopicStats
from .operate import Flow
from .ops import Call, Operations, Step
from .partition_counts import decode, mark
from .partition_counts import read_count as read_count
from .partition_counts import read_counts as read_counts
from .partitions import SEPARATOR, Partitions, merge_stats
from .topic_config import TopicConfig

if TYPE_CHECKING:  # the clients configure, pause and resume through this module
    from .client import AsyncClient, Client

T = TypeVar("T")
P = TypeVar("P", JobPage, HistoryPage)  # a page of a listing
log = logging.getLogger(__name__)

REFRESH = 5.0
"""Seconds a process trusts the partition counts it read."""


def names(topic: str, count: int | None) -> list[str]:
    """The topic itself, then its partitions' names (just the topic when not partitioned)."""
    return [topic] if not count else [topic, *Partitions(topic, count).names]


def fold(topics: Iterable[str], counts: Mapping[str, int]) -> list[str]:
    """Topic names with each partitioned topic once (its partitions hidden), sorted."""
    shown = set(counts)
    for name in topics:
        logical, sep, index = name.rpartition(SEPARATOR)
        numbered = sep and index.isascii() and index.isdigit() and str(int(index)) == index
        if numbered and int(index) < counts.get(logical, 0):
            continue
        shown.add(name)
    return sorted(shown)


def _unregistered(call: Call[T]) -> Call[T]:
    """``call`` without its registration (:func:`_everywhere` registers every topic at once),
    its durability, ``then`` and ``after`` kept: Call.join refuses a ``then`` rather than
    dropping it, as this once did."""
    return call._replace(register_topic=None)


def _everywhere(ops: Operations, topics: list[str], make: Callable[[str], Call[T]]) -> Call[T]:
    """``make(topic)`` for each topic in one round trip, registering them all; the first's
    result (Call.join allows one registration, so the topics set is written here: no topic
    named ``.`` or ``..`` gets in, as through Operations._register)."""
    for topic in topics:
        validate.new_name(topic, "topic")
    register = Step(None, (), ("SADD", topics_key(ops.prefix), *topics))
    calls = [_unregistered(make(topic)) for topic in topics]
    return Call.join(Call((register,), lambda r: None), *calls).map(lambda r: r[1])


def _first_int(replies: list[Any]) -> int:
    return int(replies[0])


def set_count(ops: Operations, topic: str, value: object) -> Flow[int]:
    """Partition an empty topic into ``value`` partitions; InvalidArgument naming
    ``partitions`` when the topic has another count or holds jobs or finished records
    (nothing changes then)."""
    count = topic_config.partitions_count(value)
    layout = Partitions(topic, count)
    validate.new_name(topic, "topic")  # partitioning makes a topic: checked before the claim
    logical = topic.rpartition(SEPARATOR)[0] or topic
    counts, stats, records, taken = yield Call.join(
        read_counts(ops),
        ops.stats(topic, own=True),
        _records(ops, topic),
        _held_names(ops, layout.names),
    )
    current, above = counts.get(topic), counts.get(logical)
    if current == count:  # a topic partitioned by an older version, or a set cut short
        yield from _spread(ops, topic, layout)  # before its mark or its partitions' settings
        return count
    if logical != topic and above is not None and fold([topic], {logical: above}) == [logical]:
        raise InvalidArgument(
            "partitions", f"{topic!r} is a partition of {logical!r}; partition that topic"
        )
    nested = [name for name in layout.names if name in counts]
    if nested:  # its ids routed there would find a partitioned topic, refusing them
        raise InvalidArgument(
            "partitions", f"{nested[0]!r}, a partition {topic!r} would have, is partitioned"
        )
    if current is not None:
        raise InvalidArgument(
            "partitions",
            f"topic {topic!r} has {current} partitions; the count cannot change, since ids "
            "would move to other partitions (delete the topic to start again)",
        )
    held = stats.scheduled + stats.ready + stats.reserved + stats.dead
    if held:
        raise InvalidArgument(
            "partitions",
            f"topic {topic!r} holds {held} job(s); partition a topic before its first put",
        )
    if records:  # a later put of such an id would start again at version 1 in its partition
        raise InvalidArgument(
            "partitions",
            f"topic {topic!r} holds {records} finished job record(s), whose ids' versions "
            "go on in it; partition a topic before its first put (or delete the topic first)",
        )
    if taken:  # ids put there as a plain topic's would be found in another partition
        raise InvalidArgument(
            "partitions",
            f"{taken[0]!r}, a partition {topic!r} would have, is a topic that holds jobs or "
            "finished job records; delete it first",
        )
    key = partitions_key(ops.prefix)
    claim = (Step(None, (), ("HSETNX", key, topic, count)), Step(None, (), ("HGET", key, topic)))
    stored = yield Call(claim, lambda r: int(decode(r[1])))
    if stored != count:  # another process set a count first
        raise InvalidArgument(
            "partitions", f"topic {topic!r} was just given {stored} partitions elsewhere"
        )
    yield from _spread(ops, topic, layout)
    return count


def _records(ops: Operations, topic: str) -> Call[int]:
    """How many finished job records the topic holds."""
    return Call((Step(None, (), ("HLEN", ops.keys(topic).name("history"))),), _first_int)


def _held_names(ops: Operations, names: list[str]) -> Call[list[str]]:
    """Those of ``names`` whose topics hold jobs or finished job records (one round trip)."""
    calls = [Call.join(ops.stats(name, own=True), _records(ops, name)) for name in names]

    def parse(found: list[tuple[TopicStats, int]]) -> list[str]:
        return [name for name, (s, records) in zip(names, found, strict=True)
                if s.scheduled + s.ready + s.reserved + s.dead + records]  # fmt: skip

    return Call.join(*calls).map(parse)


def _spread(ops: Operations, topic: str, layout: Partitions) -> Flow[None]:
    """Mark the topic (:func:`~redisched.partition_counts.mark`) and copy its settings and
    pause to every partition: all of it again when a set that was cut short is run again."""
    yield mark(ops, topic, layout.count)
    config: TopicConfig = yield ops.config(topic)
    changes = topic_config.as_changes(config)
    yield _everywhere(ops, layout.names, lambda name: ops.configure(name, changes))
    if config.paused:
        yield _everywhere(ops, layout.names, ops.pause)


def owner(topic: str, counts: Mapping[str, int]) -> Partitions | None:
    """The layout of the partitioned topic that ``topic`` is a partition of (``counts``: the
    partition counts, :func:`read_counts`), else None."""
    found = partition_owner(topic, counts)
    return None if found is None else Partitions(*found)


def refuse_partition(topic: str, counts: Mapping[str, int], what: str) -> None:
    """InvalidArgument naming ``topic`` when it is a partition of a partitioned topic:
    ``what`` (a change of its settings, its deletion) is made on that topic, for all its
    partitions at once."""
    layout = owner(topic, counts)
    if layout is not None:
        raise InvalidArgument(
            "topic",
            f"{topic!r} is a partition of {layout.topic!r}: {what} {layout.topic!r}, which "
            "does it for every partition",
        )


def no_feed(layout: Partitions) -> InvalidArgument:
    """The error naming ``topic`` of a read of a partitioned topic's own events: it has no
    feed, each partition has its own (with its own cursors), which the message names."""
    names = layout.names
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    return InvalidArgument(
        "topic", f"topic {layout.topic!r} is spread over {len(names)} partitions, each with "
        f"its own events: read theirs ({shown})",
    )  # fmt: skip


def refuse_misrouted(layout: Partitions, topic: str, job_id: str, kind: str = "job") -> None:
    """InvalidArgument naming ``id`` when ``topic`` (a partition of ``layout``) is not the
    partition ``job_id`` routes to: a put there would make a second job (or schedule) of that
    id beside the one in its own partition. An occurrence's id (with an ``@``) lives with its
    schedule, so it is let through."""
    if "@" in job_id and kind == "job":
        return
    routed = layout.route(job_id)
    if routed != topic:
        raise InvalidArgument(
            "id",
            f"{kind} {job_id!r} of {layout.topic!r} belongs in its partition {routed!r}: put "
            f"it through {layout.topic!r}",
        )


def configure(ops: Operations, topic: str, changes: Mapping[str, object]) -> Flow[TopicConfig]:
    """Change the topic's settings, ``partitions`` among them, on the topic and every
    partition; the settings after. Every value is checked before anything changes, and a
    partition's settings are changed only through its topic (InvalidArgument naming
    ``topic``)."""
    if SEPARATOR in topic and "partitions" not in changes:  # that one: set_count says why
        refuse_partition(topic, (yield read_counts(ops)), "change the settings of")
    rest = dict(changes)
    wanted = rest.pop("partitions", ...)
    to_set, to_delete = topic_config.encode_changes(rest)
    if to_set.keys() & set(topic_config.DEDUP_FIELDS):  # (its partitions hold the same)
        stored = yield ops.meta_fields(topic, topic_config.DEDUP_FIELDS)
        topic_config.check_dedup_needs_history(to_set, to_delete, stored)
    if wanted is None:
        count = yield read_count(ops, topic)
        if count is not None:
            raise InvalidArgument("partitions", f"topic {topic!r} stays in {count} partitions")
    elif wanted is not ...:
        topic_config.partitions_count(wanted)
        count = yield from set_count(ops, topic, wanted)
    else:
        count = yield read_count(ops, topic)
    everywhere = names(topic, count)
    if rest:
        config = yield _everywhere(ops, everywhere, lambda name: ops.configure(name, rest))
    else:
        config = yield ops.config(topic)
    found: TopicConfig = dataclasses.replace(config, partitions=count)
    return found


def configure_settings(
    ops: Operations, topic: str, changes: Mapping[str, object]
) -> Flow[TopicConfig]:
    """:func:`configure` without ``partitions`` (refused, naming the way to set it): what
    ``Client.configure`` does, so that a partitioned topic's partitions follow it."""
    topic_config.encode_changes(changes)
    return (yield from configure(ops, topic, changes))


def pause_topic(ops: Operations, topic: str, paused: bool) -> Flow[bool]:
    """:func:`pause` with the topic's partition count read first: what ``Client.pause`` and
    ``Client.resume`` do (a plain pause of a partitioned topic left its partitions leasing)."""
    count = yield read_count(ops, topic)
    if count is None:  # as ever: a resume registers no topic
        alone: bool = yield ops.pause(topic) if paused else ops.resume(topic)
        return alone
    changed: bool = yield pause(ops, topic, count, paused)
    return changed


def read_config(ops: Operations, topic: str) -> Call[TopicConfig]:
    """The topic's settings with its partition count, in one round trip."""
    both = Call.join(ops.config(topic), read_count(ops, topic))
    return both.map(lambda r: dataclasses.replace(r[0], partitions=r[1]))


def pause(ops: Operations, topic: str, count: int | None, paused: bool) -> Call[bool]:
    """Pause or resume the topic and its partitions in one round trip; True if it changed."""
    make = ops.pause if paused else ops.resume
    return _everywhere(ops, names(topic, count), make)


def read_stats(ops: Operations, topic: str, count: int | None) -> Call[TopicStats]:
    """The topic's counts, its partitions' added in (one round trip)."""
    if not count:  # as the counts read say (one partitioned since: its own name's, as before)
        return ops.stats(topic, own=True)
    every = [ops.stats(name, own=True) for name in names(topic, count)]
    return Call.join(*every).map(lambda found: merge_stats(topic, found))


def read_timeline(
    ops: Operations, topic: str, count: int | None, *, width: object, buckets: object
) -> Call[Timeline]:
    """The topic's timeline, its partitions' added in (one round trip)."""
    if not count:  # as read_stats
        return ops.timeline(topic, width=width, buckets=buckets, own=True)
    every = [
        ops.timeline(name, width=width, buckets=buckets, own=True) for name in names(topic, count)
    ]
    return Call.join(*every).map(lambda found: merge_timelines(topic, found))


def merge_timelines(topic: str, found: Sequence[Timeline]) -> Timeline:
    """Several partitions' timelines as one: counts added, the oldest ready job."""
    oldest = [t.oldest_ready for t in found if t.oldest_ready is not None]
    counts = [sum(column) for column in zip(*(t.counts for t in found), strict=True)]
    first = found[0]
    return Timeline(topic, first.now, first.width, counts, min(oldest, default=None))


def _cursor(text: str | None, count: int) -> tuple[int, str | None]:
    if text is None:
        return 0, None
    index, sep, inner = text.partition(":")
    if not sep or not (index.isascii() and index.isdigit()) or not int(index) <= count:
        raise InvalidArgument("cursor", "is not a cursor of this topic's listing")
    return int(index), inner or None


def jobs_page(
    ops: Operations, layout: Partitions, state: object, *, prefix: str | None = None,
    limit: int = 100, cursor: str | None = None,
) -> Flow[JobPage]:  # fmt: skip
    """One page of a partitioned topic's jobs in one state: partition after partition, then
    the topic's own (put by a process that did not know the count yet), no order across them;
    the cursor is ``<partition>:<that partition's cursor>``, ``<N>:...`` for the topic's own."""
    jobs, after = yield from _across(
        layout, limit, cursor,
        lambda name, left, inner: ops.jobs(
            name, state, prefix=prefix, limit=left, cursor=inner, own=True
        ),
    )  # fmt: skip
    return JobPage(jobs, after)


def finished_page(
    ops: Operations, layout: Partitions, *, outcome: object = None, limit: int = 100,
    cursor: str | None = None,
) -> Flow[HistoryPage]:  # fmt: skip
    """One page of a partitioned topic's finished jobs: partition after partition, then the
    topic's own (most recent first within each, no order across them); the cursor is as
    :func:`jobs_page`'s."""
    jobs, after = yield from _across(
        layout, limit, cursor,
        lambda name, left, inner: ops.finished(
            name, outcome=outcome, limit=left, cursor=inner, own=True
        ),
    )  # fmt: skip
    return HistoryPage(jobs, after)


def _across(
    layout: Partitions, limit: int, cursor: str | None,
    page_of: Callable[[str, int, str | None], Call[P]],
) -> Flow[tuple[list[Any], str | None]]:  # fmt: skip
    """Up to ``limit`` entries of a listing, partition after partition from ``cursor``, then
    the topic itself as number N (``page_of(name, how many more, its cursor)`` reads one
    page), and the next cursor."""
    index, inner = _cursor(cursor, layout.count)
    entries: list[Any] = []
    while True:
        name = layout.topic if index == layout.count else layout.name(index)
        page = yield page_of(name, limit - len(entries), inner)
        entries.extend(page.jobs)
        if page.cursor is not None:
            return entries, f"{index}:{page.cursor}"
        index, inner = index + 1, None
        if index > layout.count:
            return entries, None
        if len(entries) == limit:
            return entries, f"{index}:"


def holders(layout: Partitions, job_id: str, *, itself: bool = False) -> list[str]:
    """The topics that may hold ``job_id`` of a partitioned topic, its id's partition first.

    An id with an ``@`` may be a schedule's occurrence, which lives with its schedule: in the
    topic itself (a schedule made on it) or in the schedule id's partition (one made over HTTP
    or the CLI), not in its own id's partition (docs/design.md section 11). ``itself`` adds
    the topic for any id (a job put there by a process that did not know the count yet)."""
    routed = layout.route(job_id)
    if "@" not in job_id:
        return [routed, layout.topic] if itself else [routed]
    schedule_id = job_id[: job_id.rindex("@")]
    home = [layout.route(schedule_id)] if schedule_id else []
    return list(dict.fromkeys([routed, *home, layout.topic]))


def holder(
    ops: Operations, names: list[str], job_id: str, hashes: Sequence[str] = ("jobs",)
) -> Call[str]:
    """The first of ``names`` (from :func:`holders`) one of whose ``hashes`` holds ``job_id``
    (``jobs``: a live job; with ``history``, a finished one too; ``schedules``: a schedule),
    else the first (a job to create goes to its id's partition): one ``HEXISTS`` per name and
    hash, in one round trip."""
    field = validate.stored_id(job_id)  # an id that is not UTF-8: its bytes
    steps = tuple(
        Step(None, (), ("HEXISTS", ops.keys(n).name(h), field)) for n in names for h in hashes
    )
    width = len(hashes)

    def first(held: list[int]) -> str:
        for index, name in enumerate(names):
            if any(held[index * width : (index + 1) * width]):
                return name
        return names[0]

    return Call(steps, first)


def all_schedules(ops: Operations, topic: str, count: int | None) -> Flow[list[Schedule]]:
    """Every schedule of ``topic`` (``count``: its partition count, None when not
    partitioned): its own name's, then each partition's, sorted by id (a listing reads ids
    first, so each name is a round trip of its own)."""
    found: list[Schedule] = []
    for name in names(topic, count):
        found.extend((yield ops.schedules(name, own=True)))
    return sorted(found, key=lambda s: (s.id, s.topic))


def schedule_holder(ops: Operations, layout: Partitions, schedule_id: str) -> Call[str]:
    """The topic of ``layout`` holding schedule ``schedule_id``: the first of
    :meth:`Partitions.schedule_holders` that holds it, else its id's partition (where a new
    schedule goes); one call."""
    return holder(ops, layout.schedule_holders(schedule_id), schedule_id, ("schedules",))


def schedule_route(client: Client, topic: str, schedule_id: str) -> str:
    """The topic holding schedule ``schedule_id`` (for the CLI): when ``topic`` is
    partitioned, the first of :meth:`Partitions.schedule_holders` that holds it (one call
    more), else its id's partition, where a new schedule goes."""
    count = client.execute(read_count(client.ops, topic))
    if count is None:
        return topic
    return client.execute(schedule_holder(client.ops, Partitions(topic, count), schedule_id))


def refuse_misrouted_name(client: Client, topic: str, job_id: str, kind: str = "job") -> None:
    """InvalidArgument naming ``id`` when ``topic`` is a partition of a partitioned topic and
    ``job_id`` routes to another partition (:func:`refuse_misrouted`: a put or schedule there
    would make a second one of the id); one call when ``topic`` has a partition's form."""
    logical, separator, _ = topic.rpartition(SEPARATOR)
    if separator:
        count = client.execute(read_count(client.ops, logical))
        layout = owner(topic, {} if count is None else {logical: count})
        if layout is not None:
            refuse_misrouted(layout, topic, job_id, kind)


def put_route(client: Client, topic: str, job_id: str) -> str:
    """The topic a put of ``job_id`` into ``topic`` goes to (:func:`route`), refused as
    :func:`refuse_misrouted_name` says."""
    refuse_misrouted_name(client, topic, job_id)
    return route(client, topic, job_id)


def route(client: Client, topic: str, job_id: str, *, finished: bool = False) -> str:
    """The topic holding ``job_id`` (one call; for the CLI and scripts; long-running
    processes use :class:`PartitionMap`): when ``topic`` is partitioned, where
    :func:`holders` finds it (one more), the topic itself included, else its partition;
    ``finished``: a finished job's record counts as holding it (for its history)."""
    count = client.execute(read_count(client.ops, topic))
    if count is None:
        return topic
    names = holders(Partitions(topic, count), job_id, itself=True)
    hashes = ("jobs", "history") if finished else ("jobs",)
    return client.execute(holder(client.ops, names, job_id, hashes))


def run(client: Client, flow: Flow[T]) -> T:
    """Drive ``flow`` through a blocking client."""
    return client._drive(flow)


async def run_async(client: AsyncClient, flow: Flow[T]) -> T:
    """Drive ``flow`` through an asyncio client."""
    return await client._drive(flow)


async def served_topics(client: AsyncClient, topics: Iterable[str]) -> dict[str, str]:
    """The topics to serve for ``topics``: each partitioned one with its partitions (the
    topic itself too, so a job put there by a process that did not know the count yet runs).

    Maps each name to serve to the name it stands for (one ``HGETALL``).
    """
    counts: dict[str, int] = await client.execute(read_counts(client.ops))
    return {name: topic for topic in topics for name in names(topic, counts.get(topic))}


class PartitionMap:
    """Every partitioned topic's layout as this process last read it.

    :meth:`get` answers from memory; :meth:`current` reads the counts the first time and,
    once they are older than ``refresh`` seconds, again in the background (the caller does
    not wait). Layouts keep their reserve rotation across refreshes.
    """

    def __init__(self, refresh: float = REFRESH, clock: Callable[[], float] = time.monotonic):
        self.refresh = refresh
        self.clock = clock
        self._layouts: dict[str, Partitions] = {}
        self._read_at: float | None = None
        self._reading: asyncio.Task[None] | None = None

    def get(self, topic: str) -> Partitions | None:
        """The topic's layout, or None when it is not partitioned (no I/O)."""
        return self._layouts.get(topic) if self._layouts else None

    def owner(self, topic: str) -> Partitions | None:
        """The layout ``topic`` is a partition of, or None (no I/O)."""
        if not self._layouts or SEPARATOR not in topic:
            return None
        layout = self._layouts.get(topic.rpartition(SEPARATOR)[0])
        return None if layout is None else owner(topic, {layout.topic: layout.count})

    def load(self, counts: Mapping[str, int]) -> None:
        """Take freshly read counts."""
        old = self._layouts
        self._layouts = {
            topic: old[topic] if topic in old and old[topic].count == count
            else Partitions(topic, count)
            for topic, count in counts.items()
        }  # fmt: skip
        self._read_at = self.clock()

    def learn(self, topic: str, count: int | None) -> None:
        """Record a count this process just set (or found)."""
        if count is None:
            self._layouts.pop(topic, None)
        elif topic not in self._layouts or self._layouts[topic].count != count:
            self._layouts[topic] = Partitions(topic, count)

    async def current(self, client: AsyncClient) -> PartitionMap:
        """This map, read once before the first answer and refreshed in the background."""
        if self._read_at is None:
            counts: dict[str, int] = await client.execute(read_counts(client.ops))
            self.load(counts)
        elif self.clock() - self._read_at > self.refresh and self._reading is None:
            self._reading = asyncio.create_task(self._reread(client))
        return self

    async def _reread(self, client: AsyncClient) -> None:
        try:
            counts: dict[str, int] = await client.execute(read_counts(client.ops))
            self.load(counts)
        except Exception as exc:  # the old counts serve until the next try
            log.warning("could not read the partition counts: %s", exc)
            self._read_at = self.clock()
        finally:
            self._reading = None

    async def close(self) -> None:
        """Wait out a background read."""
        if self._reading is not None:
            with contextlib.suppress(Exception):
                await self._reading
