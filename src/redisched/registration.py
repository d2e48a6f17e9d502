"""Which topics a client has added to the topics set, and for how long it trusts that.

A call that can create jobs (a put, a schedule, a topic's settings) first adds its topic to
the topics set (``SADD``), which every listing, ``/metrics`` and the service's requeue sweep
read. A client remembers the topics it added, so that its next calls skip the ``SADD``: one
command less per call, and on Redis Cluster one node less (the set lives in a slot of its
own).

Another process may delete the topic meanwhile, which takes it out of the set. A client that
trusted its memory for ever would then put jobs into a topic nobody lists, whose timed-out
reservations no sweep returns. So a client trusts an ``SADD`` for :data:`TRUST_SECONDS` only,
and forgets the topics it deletes itself at once. A put that another process's delete
overtook within that time is found by the service's sweep: a deletion goes into the sorted set
:func:`redisched.keys.deleted_topics_key` (the topic, scored by the deletion's time), and the
sweep lists again those that hold jobs within a while of it (:mod:`redisched.http.requeue`).
Entries older than :data:`DELETIONS_KEPT_SECONDS` (by the Redis server's clock, which scores
them) are dropped by the next deletion or sweep, so the set stays small without a service too.
"""

from __future__ import annotations

import time

from .keys import PARTITION_SEPARATOR

TRUST_SECONDS = 2.0
"""How long a client skips the ``SADD`` of a topic it added (a busy producer re-adds each of
its topics once per this time, one round trip; a rare one pays it on every put)."""


MAX_REMEMBERED = 10_000
"""How many topics a client remembers adding at once (see :meth:`Registrations.add`)."""

DELETIONS_KEPT_SECONDS = 7200.0
"""How long a deletion stays in the deleted-topics set, by the Redis server's clock: longer
than the longest requeue interval (3,600 s), so that every sweep reads each deletion."""


class Registrations:
    """The topics a client added to the topics set, each trusted for :data:`TRUST_SECONDS`."""

    __slots__ = ("_until",)

    def __init__(self) -> None:
        self._until: dict[str, float] = {}  # topic -> monotonic time its SADD stops counting

    def __contains__(self, topic: object) -> bool:
        until = self._until.get(topic)  # type: ignore[call-overload]
        return until is not None and until > time.monotonic()

    def add(self, topic: str) -> None:
        """Count ``topic`` as in the topics set from now on, for :data:`TRUST_SECONDS`.

        At most :data:`MAX_REMEMBERED` topics are remembered (as the clients' other per-topic
        caches): past that the memory starts afresh, which costs the next call of each
        forgotten topic one ``SADD``, instead of growing with every topic ever put.
        """
        if len(self._until) >= MAX_REMEMBERED:
            self._until.clear()
        self._until[topic] = time.monotonic() + TRUST_SECONDS

    def discard(self, topic: object) -> None:
        """Forget ``topic`` (deleted) and its partitions' names: the next call that may
        create jobs in one of them adds it again.

        Anything but a str is ignored: a client's ``delete_topic`` calls this however its
        call ended, and an unhashable topic must leave its InvalidArgument to the caller.
        """
        if isinstance(topic, str):
            self._until.pop(topic, None)
            partitions = f"{topic}{PARTITION_SEPARATOR}"  # deleted with it
            for name in [name for name in self._until if name.startswith(partitions)]:
                del self._until[name]
