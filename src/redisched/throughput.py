"""Throughput over the last 24 hours: jobs put, acked, failed and dead per minute.

The scripts already keep each topic's totals (``total_put``, ``total_acked``...). Every server
samples them once a minute (:class:`redisched.http.throughput.ThroughputSampler`) into a sorted
set per topic, scored by the minute (``<prefix>:{<topic>}:throughput``), plus one for all
topics together (``<prefix>:throughput``); each sample also trims what is older than a day, so
a set holds at most about 1,441 members per sampling server. Nothing is added to the hot path:
no script changes, no extra command on a put or an ack. Several servers sample the same minute
harmlessly (the first sample of a minute counts). A minute's figure is the difference of
consecutive samples, spread over the minutes between them; a topic's first sample is its
starting point (what it did before the sampler first saw it is not spread over the day).

"failed" counts attempts that ended without an ack and will run again: releases and timed-out
reservations requeued; "dead" counts jobs that went dead.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .keys import TopicKeys
from .models import TopicStats

MINUTE_MS = 60_000
KEEP_MINUTES = 1440
SERIES = ("put", "acked", "failed", "dead")


def all_topics_key(prefix: str) -> str:
    """The throughput samples of every topic together (written by the glue, like topics)."""
    return f"{prefix}:throughput"


def topic_key(keys: TopicKeys) -> str:
    """A topic's throughput samples (under its hash tag, with its other keys)."""
    return keys.name("throughput")


def totals(stats: TopicStats) -> tuple[int, int, int, int]:
    """The four counters sampled: put, acked, failed (released + requeued), dead."""
    failed = stats.total_released + stats.total_requeued
    return stats.total_put, stats.total_acked, failed, stats.total_dead


def member(minute: int, counts: Sequence[int]) -> str:
    """The sorted-set member of one sample: ``minute:put:acked:failed:dead``."""
    return ":".join(str(v) for v in (minute, *counts))


@dataclass(frozen=True, slots=True)
class Throughput:
    """Jobs per minute over the last ``len(minutes)`` minutes, oldest first.

    Attributes:
        topic: the topic, or None for every topic together.
        minutes: the start of each minute (UTC).
        put, acked, failed, dead: one count per minute.
    """

    topic: str | None
    minutes: list[datetime]
    put: list[int]
    acked: list[int]
    failed: list[int]
    dead: list[int]

    def series(self) -> dict[str, list[int]]:
        """The four series by name."""
        return {"put": self.put, "acked": self.acked, "failed": self.failed, "dead": self.dead}


def parse(
    topic: str | None, members: Sequence[bytes], now_minute: int, minutes: int = KEEP_MINUTES
) -> Throughput:
    """Per-minute figures for the ``minutes`` minutes ending with ``now_minute``."""
    samples: dict[int, tuple[int, ...]] = {}
    for raw in members:
        parts = raw.decode().split(":")
        if len(parts) == 5 and all(p.isascii() and p.isdigit() for p in parts):
            minute, *counts = (int(p) for p in parts)
            # several servers sampled the minute: the first sample counts, the one with the
            # smallest totals (they only grow), not the first member in the set's text order
            known = samples.get(minute)
            if known is None or sum(counts) < sum(known):
                samples[minute] = tuple(counts)
    first = now_minute - minutes + 1
    per_minute = [[0] * minutes for _ in SERIES]
    ordered = sorted(samples.items())
    for (m0, c0), (m1, c1) in itertools.pairwise(ordered):
        gap = m1 - m0
        for s in range(len(SERIES)):
            delta = max(0, c1[s] - c0[s])  # a deleted topic starts again from zero
            share, rest = divmod(delta, gap)
            for i, minute in enumerate(range(m0 + 1, m1 + 1)):
                if first <= minute <= now_minute:
                    per_minute[s][minute - first] += share + (rest if i == gap - 1 else 0)
    stamps = [datetime.fromtimestamp(m * 60, tz=UTC) for m in range(first, now_minute + 1)]
    return Throughput(topic, stamps, *per_minute)


def now_minute(time_reply: Any) -> int:
    """The current minute from a Redis ``TIME`` reply."""
    seconds, _ = time_reply
    return int(seconds) // 60
