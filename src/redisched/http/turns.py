"""Each topic's turn among the long polls of one process (see :class:`Turns`)."""

from __future__ import annotations

import asyncio


class Turns:
    """Long polls of one topic in this process lease one at a time, and skip a lease that
    cannot find anything.

    A put wakes every waiter of its topic; each made a lease call and one found the job
    (250 waiters: ~250 calls, and without enough connections, 503s). A waiter now takes the
    topic's turn, and leases only if no lease that began after its wake-up came back short:
    that one found the topic drained, and any job put since woke the waiter again (its wake-up
    event is set anew), so nothing is missed.
    """

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._drained: dict[str, float] = {}

    def lock(self, topic: str) -> asyncio.Lock:
        """The topic's turn."""
        found = self._locks.get(topic)
        if found is None:
            found = self._locks[topic] = asyncio.Lock()
        return found

    def drained_since(self, topic: str, moment: float) -> bool:
        """True when a lease that began after ``moment`` (monotonic) came back short."""
        return self._drained.get(topic, -1.0) > moment

    def came_back_short(self, topic: str, began: float) -> None:
        """A lease that began at ``began`` found fewer jobs than it asked for."""
        if began > self._drained.get(topic, -1.0):
            self._drained[topic] = began
