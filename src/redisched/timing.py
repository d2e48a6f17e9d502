"""Waking up at an instant of the Redis server's clock, to within a fraction of a millisecond.

Two parts. :class:`ServerClock` learns the offset between the server's clock (the scripts'
``now_ms``, which decides when a job is due) and the local one from the leases' replies.
:class:`Alarm` is one thread that sets asyncio events at precise times: the event loop's own
timers round to whole milliseconds (and uvloop's may fire a millisecond early), which alone
would cost the dispatch lag target; a thread blocked on a timed lock wakes within ~0.1 ms.

An alarm reaches the event loop through two wake-ups (the thread's, then the loop's), which
cost ~0.1 ms on a quiet machine and milliseconds on a busy one. The alarm tracks a low
quantile of that cost, and an ``early`` alarm (a lease waiting for a job's run_at: the server
decides whether the job is due, so waking early costs at most a round trip) fires that much
ahead, so that the loop sees it at its time rather than after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import heapq
import itertools
import sys
import threading
import time

_COMPACT_AT = 1024
MAX_LEAD = 0.001
"""Seconds an ``early`` alarm fires ahead of its time at most."""
_LEAD_QUANTILE = 0.25  # an early alarm is seen early ~25% of the time (then costs a round trip)
_LEAD_STEP = 0.00002  # seconds the lateness estimate moves per alarm
_PR_SET_TIMERSLACK = 29


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
        """Local epoch seconds at which the alarm thread sets the event."""
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
        self._lateness = 0.0  # seconds from an alarm's time until the loop sees it (quantile)

    @property
    def lead(self) -> float:
        """Seconds an ``early`` alarm fires ahead of its time (its recent lateness)."""
        return min(self._lateness, MAX_LEAD)

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="redisched-alarm", daemon=True)
            self._thread.start()

    def set_at(self, when: float, event: asyncio.Event, *, early: bool = False) -> AlarmHandle:
        """Set ``event`` (of the running loop) at local epoch seconds ``when``; ``early``: up to
        :attr:`lead` before, so that the loop sees it at ``when`` on average."""
        if early:
            when -= self.lead
        handle = AlarmHandle(when, asyncio.get_running_loop(), event)
        if when <= time.time():  # no thread hop for a time already past
            event.set()
            return handle
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
        if sys.platform == "linux":  # the default 50 µs of timer slack is a lag of its own
            with contextlib.suppress(OSError, AttributeError):
                ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)
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
                    handle.loop.call_soon_threadsafe(self._fire, handle)

    def _fire(self, handle: AlarmHandle) -> None:
        if handle.cancelled:
            return
        # a running estimate of a low quantile of the lateness: spikes on a busy machine
        # barely move it, and early alarms that come too soon stay rare
        late = time.time() - handle.when
        if late > self._lateness:
            self._lateness += _LEAD_STEP * _LEAD_QUANTILE
        else:
            self._lateness = max(0.0, self._lateness - _LEAD_STEP * (1 - _LEAD_QUANTILE))
        handle.event.set()
