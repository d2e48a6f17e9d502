"""Prometheus metrics: job counts and totals read from Redis at scrape time, plus delivery timings.

Counts per state, the put/reserve/ack/release/requeue/dead totals and the jobs finished per
outcome (``redisched_finished_total{outcome=...}``) come from each topic's
stats in Redis, so they hold across every server process. The push dispatcher registers its
own (dispatch lag, webhook latency and outcomes) in the same registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..client import AsyncClient
from ..fanout import readable
from ..models import TopicStats

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
            " Cluster, those of a primary that is down).",
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
        self.registry.register(self._stats)

    async def render(self, client: AsyncClient, topics: Iterable[str] | None = None) -> bytes:
        """The exposition text, with fresh stats of every topic (or of ``topics``)."""
        if topics is None:
            found = await client.execute(client.ops.topic_names())
            names, self._stats.invalid_topics = found.valid, len(found.invalid)
        else:
            names = list(topics)
        read = await readable(list(names), client.stats, "metrics")
        self._stats.snapshot = [stats for stats in read if stats is not None]
        self._stats.unreadable_topics = len(read) - len(self._stats.snapshot)
        return generate_latest(self.registry)
