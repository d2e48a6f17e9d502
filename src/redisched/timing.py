"""Waking up at an instant of the Redis server's clock, to within a fraction of a millisecond.

Three parts. :class:`ServerClock` learns the offset between the server's clock (the scripts'
``now_ms``, which decides when a job is due) and the local one from the leases' replies.
:class:`Lead` learns how far ahead of a job's run_at a lease must leave so that it meets the
job just due. :class:`Alarm` is one thread that sets asyncio events at precise times: the
event loop's own timers round to whole milliseconds (and uvloop's may fire a millisecond
early), which alone would cost the dispatch lag target; a thread blocked on a timed lock wakes
within ~0.1 ms.

The lead exists because the first call after an idle sleep is slow: both processes wake
from idle (on this project's VMs a loopback round trip takes ~0.55 ms after 10 ms idle
against ~0.11 ms back to back), and the alarm reaches the loop through two wake-ups of its own.
The server decides whether a job is due, so a lease that arrives early costs one more (warm)
round trip and never runs a job early; one that arrives late costs lag.
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
MAX_LEAD = 0.002
"""Seconds a lease leaves ahead of a job's run_at at most."""
START_LEAD = 0.0005
"""The lead before it has learned: about a loopback round trip to a server woken from idle."""
_EARLY_SHARE = 0.25  # the share of leases that arrive before their job is due, once learned
_LEAD_STEP = 0.00004  # seconds the lead moves per outcome, scaled by the share
_PR_SET_TIMERSLACK = 29


class Lead:
    """Seconds ahead of a job's run_at to send the lease that is to take it.

    A running estimate of the quantile that makes :data:`_EARLY_SHARE` of such leases arrive
    before the job is due: it grows a step when the lease found the job due (it could have
    left earlier) and shrinks three steps when it did not. It covers every delay between the
    alarm and the script reading the server's clock: the alarm's wake-ups, the loop, the
    request's way to a server woken from idle, and the server clock estimate's own bias. It
    starts at :data:`START_LEAD` and stays within ``[0, MAX_LEAD]``.
    """

    def __init__(self) -> None:
        self.seconds = START_LEAD

    def met(self) -> None:
        """A lease sent ahead found its job due."""
        self.seconds = min(self.seconds + _LEAD_STEP * _EARLY_SHARE, MAX_LEAD)

    def missed(self) -> None:
        """A lease sent ahead arrived before its job was due."""
        self.seconds = max(self.seconds - _LEAD_STEP * (1 - _EARLY_SHARE), 0.0)


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
        self.lead = Lead()
        """How far ahead of a job's run_at to send the lease that takes it."""

    def observe(self, now_ms: float, sent: float, received: float, *, step_ms: float = 1) -> None:
        """Learn from one reply; ``sent`` and ``received`` are local epoch seconds, ``step_ms``
        the resolution of ``now_ms`` (a script's: floored to the millisecond; TIME's: 0.001)."""
        low = now_ms - received * 1000
        high = now_ms + step_ms - sent * 1000
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

    __slots__ = ("cancelled", "event", "fired", "loop", "when")

    def __init__(self, when: float, loop: asyncio.AbstractEventLoop, event: asyncio.Event):
        self.when = when
        """Local epoch seconds at which the alarm thread sets the event."""
        self.loop = loop
        self.event = event
        self.cancelled = False
        self.fired = False
        """True once the alarm set its event (not when the wait ended for another reason)."""

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
        if when <= time.time():  # no thread hop for a time already past
            handle.fired = True
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
        handle.fired = True
        handle.event.set()
