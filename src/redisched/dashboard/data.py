"""What the dashboard pages show, read from Redis in one round trip per page.

Each page joins the calls it needs (:func:`joined`) and runs them through
``AsyncClient.execute``: the overview of a thousand topics is still one pipeline.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..client import AsyncClient
from ..json_body import NotJson, json_value
from ..models import HistoryPage, Job, JobEvent, JobState, Schedule, Timeline, TopicStats
from ..ops import Call, Step
from ..topic_config import TopicConfig

MAX_TOPICS = 500
"""The overview lists this many topics at most (sorted by name); it says how many it left out."""
LIST_LIMIT = 50
"""Reserved and dead jobs listed on a topic page."""
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

    @property
    def ready_age(self) -> float | None:
        """Seconds the longest-waiting ready job has been due, or None."""
        if self.oldest_ready is None:
            return None
        return max(0.0, (self.now - self.oldest_ready).total_seconds())


@dataclass(frozen=True, slots=True)
class Overview:
    """Every topic's row (up to MAX_TOPICS) and how many topics there are in all."""

    rows: list[TopicRow]
    total_topics: int


async def overview(client: AsyncClient) -> Overview:
    """The overview: counts, totals, settings and the next hour of every topic."""
    names = await client.topics()
    shown = names[:MAX_TOPICS]
    ops = client.ops
    calls: list[Call[Any]] = []
    for name in shown:
        calls += [ops.stats(name), ops.config(name), ops.timeline(name, width=3600, buckets=1)]
    results = await client.execute(joined(calls)) if calls else []
    rows = []
    for i in range(len(shown)):
        stats, config, timeline = results[3 * i : 3 * i + 3]
        rows.append(
            TopicRow(stats, config, timeline.counts[0], timeline.now, timeline.oldest_ready)
        )
    return Overview(rows, len(names))


@dataclass(frozen=True, slots=True)
class TopicPage:
    """A topic's counts, settings, timelines and its reserved and dead jobs."""

    stats: TopicStats
    config: TopicConfig
    minutes: Timeline
    hours: Timeline
    reserved: list[Job]
    dead: list[Job]
    finished: HistoryPage
    events: list[JobEvent]
    schedules: list[Schedule]
    throttled: int = 0
    held: str | None = None


async def topic_page(client: AsyncClient, topic: str, held: str | None = None) -> TopicPage:
    """Everything the topic page shows, in one round trip (``held``: why the dispatcher holds
    the topic's deliveries, if it does)."""
    ops = client.ops
    calls: list[Call[Any]] = [
        ops.stats(topic),
        ops.config(topic),
        ops.timeline(topic, width=60, buckets=60),
        ops.timeline(topic, width=3600, buckets=24),
        ops.jobs(topic, JobState.RESERVED, limit=LIST_LIMIT),
        ops.jobs(topic, JobState.DEAD, limit=LIST_LIMIT),
        ops.finished(topic, limit=RECENT_LIMIT),
        ops.latest_events(topic, 2 * RECENT_LIMIT),
        Call((Step(None, (), ("HGET", ops.keys(topic).name("meta"), "total_throttled")),),
             lambda r: int(r[0] or 0)),
    ]  # fmt: skip
    (
        stats,
        config,
        minutes,
        hours,
        reserved,
        dead,
        finished,
        events,
        throttled,
    ) = await client.execute(joined(calls))
    schedules = await client.schedules(topic)  # a listing reads ids first: its own round trips
    return TopicPage(
        stats,
        config,
        minutes,
        hours,
        reserved.jobs,
        dead.jobs,
        finished,
        events,
        schedules,
        throttled,
        held,
    )


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
    except (NotJson, RecursionError):  # the indenting encoder recurses in Python
        return Body("text", text, len(data))
    return Body("json", pretty, len(data))


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
