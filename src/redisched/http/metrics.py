"""Prometheus metrics: job counts and totals read from Redis at scrape time, plus delivery timings.

Counts per state and the put/reserve/ack/release/requeue/dead totals come from each topic's
stats in Redis, so they hold across every server process. The push dispatcher records its own
observations (dispatch lag, webhook latency and outcomes) into :class:`Metrics`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..client import AsyncClient
from ..models import TopicStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
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

    def collect(self) -> Iterator[Metric]:
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


class Metrics:
    """The service's own Prometheus registry (never the global one).

    Attributes:
        registry: what ``/metrics`` renders.
        dispatch_lag: seconds between a job's run_at and its webhook delivery, per topic.
        webhook_latency: seconds a webhook receiver took to answer, per topic.
        webhook_outcomes: webhook deliveries per topic and outcome (``acked``, ``accepted``,
            ``retry_after``, ``failed``, ``timeout``, ``error``, ``stale``...).
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._stats = _StatsCollector()
        self.registry.register(self._stats)
        self.dispatch_lag = Histogram(
            "redisched_dispatch_lag_seconds",
            "Delivery time minus run_at of pushed jobs.",
            ["topic"],
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self.webhook_latency = Histogram(
            "redisched_webhook_latency_seconds",
            "Time a webhook receiver took to answer.",
            ["topic"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.webhook_outcomes = Counter(
            "redisched_webhook_deliveries",
            "Webhook deliveries by outcome.",
            ["topic", "outcome"],
            registry=self.registry,
        )

    def observe_delivery(self, topic: str, outcome: str, latency: float, lag: float) -> None:
        """Record one webhook delivery: its outcome, the receiver's latency and the lag."""
        self.webhook_outcomes.labels(topic, outcome).inc()
        self.webhook_latency.labels(topic).observe(latency)
        self.dispatch_lag.labels(topic).observe(max(lag, 0.0))

    async def render(self, client: AsyncClient, topics: Iterable[str] | None = None) -> bytes:
        """The exposition text, with fresh stats of every topic (or of ``topics``)."""
        names = await client.topics() if topics is None else list(topics)
        snapshot: list[TopicStats] = []
        for start in range(0, len(names), 100):
            batch = names[start : start + 100]
            snapshot += await asyncio.gather(*(client.stats(name) for name in batch))
        self._stats.snapshot = snapshot
        return generate_latest(self.registry)
