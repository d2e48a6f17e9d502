"""Durable puts: a write counts only once a replica acknowledged it (``WAIT``).

A durable put sends ``WAIT replicas timeout`` right after its scripts, in the same pipeline,
on the same connection to the same node (WAIT covers the writes of its own connection only).
When fewer replicas acknowledge in time, :class:`~redisched.NotReplicated` is raised: the job
is on the primary but could be lost in a failover, and the caller may put it again by id
(a create-only put of an existing id changes nothing).

A put is durable when the call asks for it (``durable=True``), when the client was made with
``durable=True`` (per service), or when the topic's ``durable`` setting is on (per topic, read
by each client at most every :data:`TOPIC_FLAG_TTL` seconds). ``durable=False`` on a call opts
out of all three.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import NotReplicated

TOPIC_FLAG_TTL = 5.0
"""Seconds a client trusts what it read of a topic's ``durable`` setting."""

DEFAULT_TIMEOUT_MS = 1000
"""How long a durable put waits for a replica by default."""


@dataclass(frozen=True, slots=True)
class Durability:
    """When and how a call waits for replicas.

    Attributes:
        topic: the topic written to.
        meta_key: the topic's meta hash, which holds its ``durable`` setting.
        required: True to always wait; None to wait only if the topic's setting says so.
        timeout_ms: how long WAIT blocks at most.
        replicas: how many replicas must acknowledge.
    """

    topic: str
    meta_key: str
    required: bool | None
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    replicas: int = 1

    def wait_command(self) -> tuple[Any, ...]:
        """The WAIT command that follows the writes."""
        return ("WAIT", self.replicas, self.timeout_ms)

    def check(self, acknowledged: object) -> None:
        """Raise NotReplicated unless ``acknowledged`` (WAIT's reply) reaches ``replicas``."""
        if isinstance(acknowledged, BaseException):
            raise NotReplicated(
                f"a put in topic {self.topic!r} may not be replicated: WAIT "
                f"failed ({acknowledged}); put again by id to be sure"
            ) from acknowledged
        if not isinstance(acknowledged, int) or acknowledged < self.replicas:
            raise NotReplicated(
                f"a put in topic {self.topic!r} is stored on the primary but "
                f"{acknowledged} of {self.replicas} replica(s) acknowledged it within "
                f"{self.timeout_ms} ms; put again by id to be sure"
            )


def is_pinned(batch: list[tuple[Any, ...]]) -> bool:
    """True when a batch ends with WAIT, so it must go to one node over one connection."""
    return bool(batch) and str(batch[-1][0]).upper() == "WAIT"


def routing_key(batch: list[tuple[Any, ...]]) -> str | bytes:
    """The first key of the batch's first script call: the node a pinned batch goes to."""
    for cmd in batch:
        if str(cmd[0]).upper() == "EVALSHA" and int(cmd[2]) > 0:
            key: str | bytes = cmd[3]
            return key
    raise ValueError("a pinned batch needs a script call with keys")


@dataclass
class TopicFlags:
    """A client's cache of each topic's ``durable`` setting, trusted for ``ttl`` seconds."""

    ttl: float = TOPIC_FLAG_TTL
    clock: Callable[[], float] = time.monotonic
    _seen: dict[str, tuple[bool, float]] = field(default_factory=dict)

    def get(self, topic: str) -> bool | None:
        """The cached setting, or None when unknown or too old."""
        entry = self._seen.get(topic)
        if entry is None or self.clock() - entry[1] > self.ttl:
            return None
        return entry[0]

    def set(self, topic: str, durable: bool) -> None:
        """Remember the topic's setting as read now."""
        if len(self._seen) >= 10_000:
            self._seen.clear()
        self._seen[topic] = (durable, self.clock())
