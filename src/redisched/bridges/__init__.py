"""Bridges that feed redisched from message brokers (``redisched bridge amqp``).

``amqp`` needs the ``redisched[amqp]`` extra; it is imported only when used.
"""

from .messages import Delete, Put, PutOptions, parse
from .metrics import BridgeMetrics, NullMetrics, PrometheusMetrics

__all__ = [
    "BridgeMetrics",
    "Delete",
    "NullMetrics",
    "PrometheusMetrics",
    "Put",
    "PutOptions",
    "parse",
]
