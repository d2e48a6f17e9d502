"""Prometheus metrics: job counts and totals read from Redis at scrape time, plus delivery timings.

Counts per state, the put/reserve/ack/release/requeue/dead totals and the jobs finished per
outcome (``redisched_finished_total{outcome=...}``) come from each topic's
stats in Redis, so they hold across every server process. A partitioned topic is one topic
here, as in the API and the dashboard: its series add up its partitions and its own jobs
(no partition label: up to 1024 partitions a topic would multiply every series). The push
dispatcher registers its own (dispatch lag, webhook latency, outcomes and held topics) in the
same registry, a partitioned topic's partitions labelled with that topic too.

Series per topic are capped (``metrics_topics``): a scrape of 20,000 topics wrote 340,000
samples (17 MB) and held the process for seconds, and Prometheus stores every series. Past
the cap, the topics that have no series of their own add up under ``topic="{other}"`` (a
brace is no topic name's). Which topics have their own is decided once and kept, so that no
topic's counters and no ``{other}`` counter go back while topics come and go: the most jobs
at the first scrape past the cap, then new topics as places free up (a topic deleted).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..client import AsyncClient
from ..errors import BackendError
from ..fanout import readable
from ..models import TopicStats
from ..ops import Call
from ..partition_setting import owner, read_counts
from ..partitions import merge_stats

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OTHER = "{other}"
"""The ``topic`` label of the topics past the cap (see :class:`Metrics`)."""
READ_AT_ONCE = 256
"""Topics whose stats one round trip reads (one pipeline)."""
_TOTALS = (
    ("puts", "total_put", "Jobs put (created or replaced)."),
    ("reserves", "total_reserved", "Jobs leased to consumers."),
    ("acks", "total_acked", "Jobs finished."),
    ("releases", "total_released", "Reservations given back."),
    ("requeues", "total_requeued", "Reservations that timed out and were requeued."),
    ("dead", "total_dead", "Jobs moved to dead."),
    ("pulls", "total_pulled", "Jobs pulled (at-most-once)."),
)


class _StatsCollector(Collector):
    """Yields the snapshot of topic stats taken just before a scrape."""

    def __init__(self) -> None:
        self.snapshot: Sequence[TopicStats] = ()
        self.invalid_topics = 0
        self.unreadable_topics = 0
        self.other_topics = 0
        self.other_paused = 0

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "redisched_other_topics",
            f'Topics past metrics_topics, whose series add up under topic="{OTHER}".',
            value=self.other_topics,
        )
        yield GaugeMetricFamily(
            "redisched_invalid_topic_names",
            "Members of the topics set that are no valid topic name (skipped everywhere).",
            value=self.invalid_topics,
        )
        yield GaugeMetricFamily(
            "redisched_unreadable_topics",
            "Topics whose stats could not be read for this scrape (left out of it: on a Redis"
            " Cluster, those of a primary that is down; a partitioned topic when any of its"
            " partitions is).",
            value=self.unreadable_topics,
        )
        jobs = GaugeMetricFamily("redisched_jobs", "Jobs per state now.", labels=["topic", "state"])
        for stats in self.snapshot:
            for state in ("scheduled", "ready", "reserved", "dead"):
                jobs.add_metric([stats.topic, state], getattr(stats, state))
        yield jobs
        paused = GaugeMetricFamily(
            "redisched_topic_paused", f"1 when paused ({OTHER}: how many are).", labels=["topic"]
        )
        for stats in self.snapshot:
            count = self.other_paused if stats.topic == OTHER else int(stats.paused)
            paused.add_metric([stats.topic], count)
        yield paused
        for name, attribute, doc in _TOTALS:
            family = CounterMetricFamily(f"redisched_{name}", doc, labels=["topic"])
            for stats in self.snapshot:
                family.add_metric([stats.topic], getattr(stats, attribute))
            yield family
        finished = CounterMetricFamily(
            "redisched_finished",
            "Jobs that ended, per outcome (done, cancelled, dead, pulled, aborted).",
            labels=["topic", "outcome"],
        )  # fmt: skip
        for stats in self.snapshot:
            for outcome in ("done", "cancelled", "dead", "pulled", "aborted"):
                finished.add_metric([stats.topic, outcome], getattr(stats, f"finished_{outcome}"))
        yield finished


class Metrics:
    """The service's own Prometheus registry (never the global one).

    ``/metrics`` renders :attr:`registry`; other parts register their metrics into it (the
    push dispatcher's webhook latency, outcomes and dispatch lag).

    Args:
        max_topics: how many topics have series of their own (see the module's docstring);
            0: none, every topic adds up under ``{other}``.

    Attributes:
        registry: what ``/metrics`` renders.
    """

    def __init__(self, max_topics: int = 1000) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._stats = _StatsCollector()
        self._counts: dict[str, int] = {}  # the partition counts last read
        self._max_topics = max_topics
        self._own: set[str] | None = None  # the topics with their own series, once capped
        self.registry.register(self._stats)

    async def render(self, client: AsyncClient, topics: Iterable[str] | None = None) -> bytes:
        """The exposition text, with fresh stats of every topic (or of ``topics``)."""
        if topics is None:
            found = await client.execute(client.ops.topic_names())
            names, self._stats.invalid_topics = found.valid, len(found.invalid)
        else:
            names = list(topics)
        try:
            self._counts = await client.execute(read_counts(client.ops))
        except BackendError as exc:  # its node is down: the counts read last
            log.warning("metrics: could not read the partition counts: %s", exc)
        read = await read_stats(client, list(names))
        snapshot, self._stats.unreadable_topics = by_topic(names, read, self._counts)
        self._own = own_topics(snapshot, self._own, self._max_topics)
        self._stats.snapshot, rest = fold(snapshot, self._own)
        self._stats.other_topics = len(rest)
        self._stats.other_paused = sum(stats.paused for stats in rest)
        return generate_latest(self.registry)


async def read_stats(client: AsyncClient, names: list[str]) -> list[TopicStats | None]:
    """Every topic's stats, :data:`READ_AT_ONCE` in one round trip; None for a topic Redis
    cannot serve now (a chunk that fails is read again topic by topic, so that on a Redis
    Cluster only the topics of a primary that is down are missing)."""
    read: list[TopicStats | None] = []
    for start in range(0, len(names), READ_AT_ONCE):
        chunk = names[start : start + READ_AT_ONCE]
        try:
            # own: a partitioned topic's name and its partitions, each read apart
            joined = Call.join(*(client.ops.stats(name, own=True) for name in chunk))
            found: list[TopicStats] = await client.execute(joined)
            read += found
        except BackendError:
            own = lambda name: client.execute(client.ops.stats(name, own=True))  # noqa: E731
            read += await readable(chunk, own, "metrics")
    return read


def own_topics(snapshot: Sequence[TopicStats], own: set[str] | None, limit: int) -> set[str] | None:
    """The topics with series of their own: None (all) up to ``limit`` topics; past it, those
    that had their own and still exist, and as many more as fit, the most jobs first."""
    if own is None and len(snapshot) <= limit:
        return None
    present = {stats.topic for stats in snapshot}
    kept = present if own is None else own & present
    if own is not None and len(kept) >= limit:
        return kept
    chosen = set() if own is None else set(kept)
    rest = sorted(
        (s for s in snapshot if s.topic not in chosen),
        key=lambda s: (-(s.scheduled + s.ready + s.reserved + s.dead), s.topic),
    )  # fmt: skip
    chosen.update(stats.topic for stats in rest[: limit - len(chosen)])
    return chosen


def fold(
    snapshot: Sequence[TopicStats], own: set[str] | None
) -> tuple[list[TopicStats], list[TopicStats]]:
    """The topics of ``own`` as they are (all when None), then the rest added up as one
    named :data:`OTHER`; and the rest."""
    if own is None:
        return list(snapshot), []
    kept = [stats for stats in snapshot if stats.topic in own]
    rest = [stats for stats in snapshot if stats.topic not in own]
    return ([*kept, merge_stats(OTHER, rest)] if rest else kept), rest


def by_topic(
    names: Sequence[str], read: Sequence[TopicStats | None], counts: Mapping[str, int]
) -> tuple[list[TopicStats], int]:
    """Each topic's stats, a partitioned topic's partitions added into its own, and how many
    topics are left out: a partitioned one when any of its names could not be read, as its
    sum would be short (and its counters would seem to go back)."""
    groups: dict[str, list[TopicStats | None]] = {}
    for name, stats in zip(names, read, strict=True):
        layout = owner(name, counts)
        groups.setdefault(name if layout is None else layout.topic, []).append(stats)
    whole = []
    for topic, group in groups.items():
        parts = [stats for stats in group if stats is not None]
        if len(parts) < len(group):
            continue
        single = len(parts) == 1 and parts[0].topic == topic
        whole.append(parts[0] if single else merge_stats(topic, parts))
    return whole, len(groups) - len(whole)
