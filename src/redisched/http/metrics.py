"""Prometheus metrics: job counts and totals read from Redis at scrape time, plus delivery timings.

Counts per state, the put/reserve/ack/release/requeue/dead totals and the jobs finished per
outcome (``redisched_finished_total{outcome=...}``) come from each topic's
stats in Redis, so they hold across every server process. A partitioned topic is one topic
here, as in the API and the dashboard: its series add up its partitions and its own jobs
(no partition label: up to 1024 partitions a topic would multiply every series). The push
dispatcher registers its own (dispatch lag, webhook latency, outcomes and held topics) in the
same registry, a partitioned topic's partitions labelled with that topic too.
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
from ..partition_setting import owner, read_counts
from ..partitions import merge_stats

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
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

    def collect(self) -> Iterator[Metric]:
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
        paused = GaugeMetricFamily("redisched_topic_paused", "1 when paused.", labels=["topic"])
        for stats in self.snapshot:
            paused.add_metric([stats.topic], int(stats.paused))
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

    Attributes:
        registry: what ``/metrics`` renders.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._stats = _StatsCollector()
        self._counts: dict[str, int] = {}  # the partition counts last read
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
        read = await readable(list(names), client.stats, "metrics")
        snapshot, left_out = by_topic(names, read, self._counts)
        self._stats.snapshot, self._stats.unreadable_topics = snapshot, left_out
        return generate_latest(self.registry)


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
