"""What the dashboard pages show, read from Redis in one round trip per page.

Each page joins the calls it needs (:func:`joined`) and runs them through
``AsyncClient.execute``: the overview of a thousand topics is still one pipeline.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from ..client import AsyncClient
from ..errors import BackendError
from ..fanout import or_none, readable
from ..json_body import NotJson, json_value
from ..keys import partitions_key, topics_key
from ..limits import read_throttled
from ..models import HistoryPage, JobEvent, JobPage, JobState, Schedule, Timeline, TopicStats
from ..ops import Call, Operations
from ..partition_setting import (
    all_schedules,
    fold,
    jobs_page,
    names,
    read_config,
    read_count,
    read_counts,
    read_stats,
    read_timeline,
    run_async,
)
from ..partitions import Partitions
from ..throughput import Throughput
from ..topic_config import TopicConfig
from ..unreachable import Unreachable

MAX_TOPICS = 500
"""The overview lists this many topics at most (sorted by name); it says how many it left out."""
LIST_LIMIT = 50
"""Jobs per page on a topic page."""
RECENT_LIMIT = 10
"""Finished jobs and events shown on a topic page (the finished tab pages through the rest)."""


def joined(calls: Sequence[Call[Any]]) -> Call[list[Any]]:
    """One call running ``calls`` in a single round trip; their results in order.

    The calls must not register a topic (reads only).
    """
    return Call.join(*calls)


@dataclass(frozen=True, slots=True)
class TopicRow:
    """One topic on the overview."""

    stats: TopicStats
    config: TopicConfig
    next_hour: int
    now: datetime
    oldest_ready: datetime | None
    unreachable: ClassVar[bool] = False

    @property
    def topic(self) -> str:
        """The topic's name."""
        return self.stats.topic

    @property
    def ready_age(self) -> float | None:
        """Seconds the longest-waiting ready job has been due, or None."""
        if self.oldest_ready is None:
            return None
        return max(0.0, (self.now - self.oldest_ready).total_seconds())


@dataclass(frozen=True, slots=True)
class UnreachableRow:
    """A topic on the overview whose keys Redis cannot serve now (its Cluster primary down)."""

    topic: str
    unreachable: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class Overview:
    """Every topic's row (up to MAX_TOPICS, by name), how many topics there are in all, and
    the throughput of every topic together over the last day (None when Redis cannot serve
    it now)."""

    rows: list[TopicRow | UnreachableRow]
    total_topics: int
    throughput: Throughput | None

    @property
    def readable(self) -> list[TopicRow]:
        """The rows read (the others are unreachable)."""
        return [row for row in self.rows if isinstance(row, TopicRow)]


def _row_calls(ops: Operations, name: str, count: int | None) -> list[Call[Any]]:
    """The reads of one overview row (see :func:`_row`)."""
    return [
        read_stats(ops, name, count),
        ops.config(name),
        read_timeline(ops, name, count, width=3600, buckets=1),
    ]


def _row(replies: list[Any]) -> TopicRow:
    stats, config, timeline = replies
    return TopicRow(stats, config, timeline.counts[0], timeline.now, timeline.oldest_ready)


async def overview(client: AsyncClient, unreachable: Unreachable | None = None) -> Overview:
    """The overview: counts, totals, settings and the next hour of every topic, in one round
    trip while Redis serves every topic (the throughput chart's samples in another, beside it).

    On a Redis Cluster with a primary down, the topics Redis cannot serve are
    :class:`UnreachableRow` and the others are shown: after a failed round trip (which waited
    out the client's retries) each topic is read on its own, once
    (:func:`~redisched.fanout.readable`), and the topics that failed are passed over while
    ``unreachable`` says so, then tried on their own, once, beside the others' round trip: an
    outage costs one overview the client's ``retry_for``, not one every period.
    BackendError naming the list of topics when that cannot be read.
    """
    ops = client.ops
    skipped = Unreachable() if unreachable is None else unreachable
    try:
        every, counts = await client.execute(Call.join(ops.topics(), read_counts(ops)))
    except BackendError as exc:
        keys = f"{topics_key(ops.prefix)}, {partitions_key(ops.prefix)}"
        raise BackendError(f"the list of topics ({keys}) cannot be read: {exc}") from exc
    names = fold(every, counts)  # a partitioned topic once, its partitions added in
    shown = names[:MAX_TOPICS]
    probes = [name for name in shown if skipped.probing(name)]
    tried = [name for name in shown if not skipped.skipped(name) and name not in probes]
    (read, probed), rates = await asyncio.gather(
        _rows(client, tried, probes, counts), _throughput(client, skipped)
    )
    found: dict[str, TopicRow] = {}
    for name, row in zip([*tried, *probes], [*read, *probed], strict=True):
        if row is None:
            skipped.failed(name)
        else:
            skipped.answered(name)
            found[name] = row
    rows = [found.get(name) or UnreachableRow(name) for name in shown]
    return Overview(rows, len(names), rates)


THROUGHPUT = ""
"""The throughput samples' entry in the overview's :class:`Unreachable` (no topic is named
``""``): their key lives on one node too."""


async def _rows(
    client: AsyncClient, tried: list[str], probes: list[str], counts: dict[str, int]
) -> tuple[list[TopicRow | None], list[TopicRow | None]]:
    """The rows of ``tried`` in one round trip (each on its own, once, when it fails), and
    of ``probes`` each on its own, once; None for a topic Redis cannot serve."""

    def each(names: list[str]) -> Awaitable[list[TopicRow | None]]:
        return readable(names, lambda n: _read_row(client, n, counts.get(n)), "overview")

    async def together() -> list[TopicRow | None]:
        calls = [call for name in tried for call in _row_calls(client.ops, name, counts.get(name))]
        if not calls:
            return []
        try:
            results = await client.execute(joined(calls))
        except BackendError:  # a Cluster primary down: each topic on its own
            return await each(tried)
        return [_row(results[3 * i : 3 * i + 3]) for i in range(len(tried))]

    return await asyncio.gather(together(), each(probes))


async def _throughput(client: AsyncClient, skipped: Unreachable) -> Throughput | None:
    """The overview's throughput chart, passed over and tried again as a topic's row is."""
    if skipped.skipped(THROUGHPUT):
        return None
    once = 0 if skipped.probing(THROUGHPUT) else None
    call = client.execute(client.ops.throughput(), retry_for=once)
    rates = await or_none(call, "the overview's throughput")
    if rates is None:
        skipped.failed(THROUGHPUT)
    else:
        skipped.answered(THROUGHPUT)
    return rates


async def _read_row(client: AsyncClient, name: str, count: int | None) -> TopicRow:
    """One topic's row, tried once: the caller met a failure already (it waited out the
    client's retries) or tries a topic that failed a while ago."""
    return _row(await client.execute(joined(_row_calls(client.ops, name, count)), retry_for=0))


@dataclass(frozen=True, slots=True)
class Listing:
    """The jobs tab of a topic page: one page of one state, maybe filtered by id prefix."""

    state: JobState
    prefix: str | None
    cursor: str | None
    page: JobPage


@dataclass(frozen=True, slots=True)
class TopicPage:
    """A topic's counts, settings, timelines and one page of its jobs in one state; for a
    partitioned topic, its partitions' counts added up, each partition's (``partitions``), and
    the topic's own (``own``: jobs put by a process that did not know the count yet)."""

    stats: TopicStats
    config: TopicConfig
    minutes: Timeline
    hours: Timeline
    listing: Listing
    throughput: Throughput
    finished: HistoryPage
    events: list[JobEvent]
    schedules: list[Schedule]
    throttled: int = 0
    held: str | None = None
    partitions: list[TopicStats] = field(default_factory=list)
    own: TopicStats | None = None


def _known(page: JobPage) -> Call[JobPage]:
    """A call of no step that answers ``page`` (read already)."""
    return Call((), lambda replies: page)


def default_state(stats: TopicStats) -> JobState:
    """The tab shown first: where an operator is most likely needed (dead, then running...)."""
    for state in (JobState.DEAD, JobState.RESERVED, JobState.READY):
        if getattr(stats, state.value):
            return state
    return JobState.SCHEDULED


async def topic_page(
    client: AsyncClient,
    topic: str,
    state: JobState | None = None,
    prefix: str | None = None,
    cursor: str | None = None,
    held: str | None = None,
) -> TopicPage:
    """Everything the topic page shows: one round trip, then the schedules (and first the
    counts when the tab is not chosen); ``held``: why the dispatcher holds the topic's
    deliveries, if it does."""
    ops = client.ops
    count = await client.execute(read_count(ops, topic))
    if state is None:
        state = default_state(await client.execute(read_stats(ops, topic, count)))
    if count is None:
        listed = ops.jobs(topic, state, prefix=prefix, limit=LIST_LIMIT, cursor=cursor, own=True)
    else:  # partition after partition, in round trips of its own
        flow = jobs_page(ops, Partitions(topic, count), state, prefix=prefix,
                         limit=LIST_LIMIT, cursor=cursor)  # fmt: skip
        listed = _known(await run_async(client, flow))
    calls: list[Call[Any]] = [
        read_stats(ops, topic, count),
        read_config(ops, topic),
        read_timeline(ops, topic, count, width=60, buckets=60),
        read_timeline(ops, topic, count, width=3600, buckets=24),
        listed,
        ops.throughput(topic),
        ops.finished(topic, limit=RECENT_LIMIT, own=True),  # the topic's own name's
        _latest_events(ops, topic, count),
        read_throttled(ops, topic),
    ]  # fmt: skip
    parts = [ops.stats(name, own=True) for name in names(topic, count)] if count else []  # each
    replies = await client.execute(joined([*calls, *parts]))
    stats, config, minutes, hours, page, rates, finished, events, throttled = replies[:9]
    listing = Listing(state, prefix, cursor, page)
    schedules = await run_async(client, all_schedules(ops, topic, count))
    return TopicPage(
        stats, config, minutes, hours, listing, rates, finished, events, schedules, throttled,
        held, replies[10:], replies[9] if parts else None,
    )  # fmt: skip


def _latest_events(ops: Operations, topic: str, count: int | None) -> Call[list[JobEvent]]:
    """The topic's latest events; of a partitioned one, its partitions' feeds merged (each
    has its own; the topic's holds what was put before it was partitioned)."""
    if not count:
        return ops.latest_events(topic, 2 * RECENT_LIMIT, own=True)
    feeds = joined(
        [ops.latest_events(name, 2 * RECENT_LIMIT, own=True) for name in names(topic, count)]
    )

    def newest(each: list[list[JobEvent]]) -> list[JobEvent]:
        merged = sorted((event for feed in each for event in feed), key=lambda e: e.at)
        return merged[-2 * RECENT_LIMIT :]

    return feeds.map(newest)


@dataclass(frozen=True, slots=True)
class Body:
    """A job body as shown: ``kind`` is json, text or binary; ``text`` is what to display."""

    kind: str
    text: str
    size: int


def show_body(data: bytes) -> Body:
    """Pretty-print a JSON body; show other UTF-8 (or JSON nested too deep) as text and
    anything else as hex."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        shown = data[:4096].hex(" ")
        return Body("binary", shown + (" …" if len(data) > 4096 else ""), len(data))
    try:
        pretty = json.dumps(json_value(data), indent=2, ensure_ascii=False)
        exact = _reads_back(text)
    except (NotJson, RecursionError):  # the indenting encoder recurses in Python
        return Body("text", text, len(data))
    # pretty-printed only when nothing is lost: the job page's body form starts from this text
    return Body("json" if exact else "text", pretty if exact else text, len(data))


class _Lossy(Exception):
    """A JSON text that a parse and encode would change (beyond its white space)."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise _Lossy("a repeated key")
    return found


def _number(text: str, kind: type[int] | type[float]) -> int | float:
    value = kind(text)
    if (str(value) if kind is int else repr(value)) != text:
        raise _Lossy(f"{text} reads back as {value}")
    return value


def _reads_back(text: str) -> bool:
    """Whether ``text`` (JSON) reads back as written once parsed and encoded: no repeated
    key, every number in the form Python writes it (``1E2`` would show as ``100.0``)."""
    try:
        json.loads(
            text, object_pairs_hook=_pairs, parse_int=lambda t: _number(t, int),
            parse_float=lambda t: _number(t, float),
        )  # fmt: skip
    except _Lossy:
        return False
    except ValueError:  # NaN, Infinity and the like, which msgspec refused already
        return False
    return True


def duration(seconds: float) -> str:
    """A short human duration: ``42s``, ``5m 03s``, ``2h 05m``, ``3d 4h``."""
    s = int(abs(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86_400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86_400}d {s % 86_400 // 3600}h"


def relative(when: datetime, now: datetime) -> str:
    """``in 5m 03s`` or ``2h 05m ago`` (``now`` when within a second)."""
    seconds = (when - now).total_seconds()
    if abs(seconds) < 1:
        return "now"
    return f"in {duration(seconds)}" if seconds > 0 else f"{duration(seconds)} ago"


def utc(when: datetime) -> str:
    """A UTC time as ``2030-03-17 17:46:40 UTC``."""
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")
