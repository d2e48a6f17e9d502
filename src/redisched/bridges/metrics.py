"""Counters a bridge keeps: an interface, a no-op default and a Prometheus implementation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["BridgeMetrics", "NullMetrics", "PrometheusMetrics"]


class BridgeMetrics(Protocol):
    """What a bridge reports; the HTTP service's ``/metrics`` can expose an implementation."""

    def consumed(self, count: int) -> None:
        """Messages received from the broker."""

    def put(self, count: int) -> None:
        """Puts committed to Redis (created, replaced or already there)."""

    def deleted(self, count: int) -> None:
        """Deletes committed to Redis (whether or not the job existed)."""

    def rejected(self, count: int) -> None:
        """Malformed messages sent to the dead-letter queue."""


class NullMetrics:
    """Counts nothing: the default when no metrics are wanted."""

    def consumed(self, count: int) -> None:
        """Ignore."""

    def put(self, count: int) -> None:
        """Ignore."""

    def deleted(self, count: int) -> None:
        """Ignore."""

    def rejected(self, count: int) -> None:
        """Ignore."""


class PrometheusMetrics:
    """Prometheus counters ``redisched_bridge_messages_{consumed,put,deleted,rejected}_total``.

    Args:
        registry: where to register the counters, e.g. the one ``/metrics`` serves
            (``prometheus_client.REGISTRY`` for the global one).
        bridge: the value of the ``bridge`` label (e.g. ``amqp``).
    """

    def __init__(self, registry: CollectorRegistry, bridge: str = "amqp") -> None:
        from prometheus_client import Counter

        def counter(name: str, text: str) -> Counter:
            return Counter(f"redisched_bridge_messages_{name}", text, ["bridge"], registry=registry)

        self._consumed = counter("consumed", "Messages received from the broker.").labels(bridge)
        self._put = counter("put", "Puts committed to Redis.").labels(bridge)
        self._deleted = counter("deleted", "Deletes committed to Redis.").labels(bridge)
        self._rejected = counter("rejected", "Messages dead-lettered as malformed.").labels(bridge)

    def consumed(self, count: int) -> None:
        """Add ``count`` received messages."""
        self._consumed.inc(count)

    def put(self, count: int) -> None:
        """Add ``count`` committed puts."""
        self._put.inc(count)

    def deleted(self, count: int) -> None:
        """Add ``count`` committed deletes."""
        self._deleted.inc(count)

    def rejected(self, count: int) -> None:
        """Add ``count`` dead-lettered messages."""
        self._rejected.inc(count)
