"""Waking up at an instant of the Redis server's clock, to within a fraction of a millisecond.

Two parts. :class:`ServerClock` learns the offset between the server's clock (the scripts'
``now_ms``, which decides when a job is due) and the local one from the leases' replies.
:class:`Alarm` is one thread that sets asyncio events at precise times: the event loop's own
timers round to whole milliseconds (and uvloop's may fire a millisecond early), which alone
would cost the dispatch lag target; a thread blocked on a timed lock wakes within ~0.1 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import threading
import time

_COMPACT_AT = 1024


class ServerClock:
    """An estimate of ``server_ms - local_ms``, kept from the replies that carry ``now_ms``.

    A reply whose script read ``now_ms`` (floored to the millisecond) between the local
    instants ``sent`` and ``received`` bounds the offset to ``[now_ms - received,
    now_ms + 1 - sent)``. The estimate is the largest lower bound seen, so it never runs
    ahead of the server: a wake-up computed from it is late by at most a fraction of a
    millisecond, never early. A bound that contradicts it (the local clock was stepped)
    resets it.
    """

    def __init__(self) -> None:
        self._offset_ms: float | None = None

    def observe(self, now_ms: int, sent: float, received: float) -> None:
        """Learn from one reply; ``sent`` and ``received`` are local epoch seconds."""
        low = now_ms - received * 1000
        high = now_ms + 1 - sent * 1000
        offset = self._offset_ms
        if offset is None or offset < low or offset > high:
            self._offset_ms = low

    def local_time(self, server_ms: float) -> float:
        """The local epoch seconds at which the server's clock shows ``server_ms``."""
        return (server_ms - (self._offset_ms or 0.0)) / 1000

    def now_ms(self) -> float:
        """The server's clock now, as far as known."""
        return time.time() * 1000 + (self._offset_ms or 0.0)


class AlarmHandle:
    """A scheduled alarm; :meth:`cancel` it when the wait ended for another reason."""

    __slots__ = ("cancelled", "event", "loop", "when")

    def __init__(self, when: float, loop: asyncio.AbstractEventLoop, event: asyncio.Event):
        self.when = when
        self.loop = loop
        self.event = event
        self.cancelled = False

    def cancel(self) -> None:
        """Do not fire (a no-op if it already fired)."""
        self.cancelled = True


class Alarm:
    """One daemon thread that sets asyncio events at given local times.

    Start it with :meth:`start`, stop it with :meth:`close`. :meth:`set_at` may be called from
    the event loop's thread while the alarm thread waits.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, AlarmHandle]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._closed = False

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="redisched-alarm", daemon=True)
            self._thread.start()

    def set_at(self, when: float, event: asyncio.Event) -> AlarmHandle:
        """Set ``event`` (of the running loop) at local epoch seconds ``when``."""
        handle = AlarmHandle(when, asyncio.get_running_loop(), event)
        with self._cond:
            if len(self._heap) > _COMPACT_AT:  # drop alarms cancelled long before their time
                self._heap = [entry for entry in self._heap if not entry[2].cancelled]
                heapq.heapify(self._heap)
            heapq.heappush(self._heap, (when, next(self._order), handle))
            if self._heap[0][2] is handle:
                self._cond.notify()
        return handle

    def close(self) -> None:
        """Stop the thread; pending alarms never fire."""
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if not self._heap:
                    self._cond.wait()
                    continue
                when, _, handle = self._heap[0]
                if handle.cancelled:
                    heapq.heappop(self._heap)
                    continue
                remaining = when - time.time()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
                heapq.heappop(self._heap)
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits
                    handle.loop.call_soon_threadsafe(_fire, handle)


def _fire(handle: AlarmHandle) -> None:
    if not handle.cancelled:
        handle.event.set()
