"""What the push dispatcher reports: an interface, a no-op default and a Prometheus version."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["DispatchMetrics", "NullDispatchMetrics", "Outcome", "PrometheusDispatchMetrics"]


class Outcome(enum.StrEnum):
    """How one delivery ended, from the job's side."""

    ACKED = "acked"  # 2xx: the job is done
    ACCEPTED = "accepted"  # 202: the job stays reserved until the receiver acks or releases
    THROTTLED = "throttled"  # 429/503 with Retry-After: released after that delay
    RETRIED = "retried"  # another failure: released with backoff
    DEAD = "dead"  # a failure on the last allowed attempt: the job went to dead
    STALE = "stale"  # the reservation was lost meanwhile (TTR expired, deleted): nothing applied
    CANCELLED = "cancelled"  # deleted, aborted, replaced or expired in flight: request closed
    ERROR = "error"  # Redis failed while applying the outcome: the job comes back after its TTR


class DispatchMetrics(Protocol):
    """What the dispatcher reports; the HTTP service's ``/metrics`` can expose an implementation.

    ``topic`` is the topic a job was put into: a partitioned topic's partitions are reported
    under that topic (no partition label: up to 1024 partitions would multiply every series).
    """

    def delivery(self, topic: str, outcome: Outcome, seconds: float) -> None:
        """One webhook request ended with ``outcome`` after ``seconds``."""

    def lag(self, topic: str, seconds: float) -> None:
        """A delivery started ``seconds`` after the job's run_at (the dispatch lag)."""

    def held(self, topic: str, held: bool) -> None:
        """The topic's deliveries (a partitioned topic's: any partition's) are held (its
        webhook is refused) or no longer held."""


class NullDispatchMetrics:
    """Records nothing: the default."""

    def delivery(self, topic: str, outcome: Outcome, seconds: float) -> None:
        """Ignore."""

    def lag(self, topic: str, seconds: float) -> None:
        """Ignore."""

    def held(self, topic: str, held: bool) -> None:
        """Ignore."""


class PrometheusDispatchMetrics:
    """``redisched_webhook_deliveries_total{topic,outcome}``,
    ``redisched_webhook_latency_seconds{topic}``, ``redisched_dispatch_lag_seconds{topic}``
    and ``redisched_webhook_held{topic}`` (1 while the topic's webhook is refused); a
    partitioned topic's series add up its partitions.

    Args:
        registry: where to register them, e.g. the registry ``/metrics`` serves.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self._deliveries = Counter(
            "redisched_webhook_deliveries",
            "Webhook requests by outcome.",
            ["topic", "outcome"],
            registry=registry,
        )
        self._latency = Histogram(
            "redisched_webhook_latency_seconds",
            "Webhook request duration.",
            ["topic"],
            registry=registry,
        )
        self._lag = Histogram(
            "redisched_dispatch_lag_seconds",
            "Start of a webhook delivery minus the job's run_at.",
            ["topic"],
            buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60),
            registry=registry,
        )
        self._held = Gauge(
            "redisched_webhook_held",
            "1 while a topic's deliveries are held because its webhook is refused.",
            ["topic"],
            registry=registry,
        )

    def delivery(self, topic: str, outcome: Outcome, seconds: float) -> None:
        """Count the outcome and observe the latency."""
        self._deliveries.labels(topic, outcome.value).inc()
        self._latency.labels(topic).observe(seconds)

    def lag(self, topic: str, seconds: float) -> None:
        """Observe the dispatch lag."""
        self._lag.labels(topic).observe(max(0.0, seconds))

    def held(self, topic: str, held: bool) -> None:
        """Set the topic's held gauge."""
        self._held.labels(topic).set(1 if held else 0)
