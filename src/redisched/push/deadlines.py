"""Request deadlines on one timer: the webhook timeout without a timer per request.

aiohttp's own ``timeout`` arms a loop timer for each request and enters a timer context at
each of its steps: ~13-20 µs of CPU per request on a loopback receiver, 10-15% of all the
dispatcher spends on a delivery. Here a deadline is a dict entry, and one timer, set for the
earliest deadline, cancels the tasks whose deadline passed, as ``asyncio.timeout`` does. A
request ends long before its deadline, so the timer fires about once per timeout, finds the
requests it was set for gone and is set again for the oldest in flight.

:meth:`Deadlines.cut` moves a deadline to now: the dispatcher cuts a request short when its
job is deleted, aborted or replaced meanwhile, and the place takes that cancellation back the
same way, with nothing added to a request that ends by itself.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

__all__ = ["Deadlines"]


class Deadlines:
    """Cancels each armed task whose deadline passed; :meth:`disarm` tells such a cancellation
    from any other (the caller then ``uncancel()``\\ s the task, see :meth:`disarm`).

    One instance serves one event loop.
    """

    def __init__(self) -> None:
        self._due: dict[asyncio.Task[Any], float] = {}  # task -> loop time of its deadline
        self._expired: set[asyncio.Task[Any]] = set()  # cancelled for their deadline
        self._cut: set[asyncio.Task[Any]] = set()  # of those, the ones cut short (cut())
        self._timer: asyncio.TimerHandle | None = None
        self._when = math.inf  # when the timer fires

    def __len__(self) -> int:
        return len(self._due)

    def arm(self, task: asyncio.Task[Any], seconds: float) -> None:
        """Cancel ``task`` if it is still armed ``seconds`` from now."""
        loop = task.get_loop()
        when = loop.time() + seconds
        self._due[task] = when
        if when < self._when:
            self._set(loop, when)

    def cut(self, task: asyncio.Task[Any]) -> bool:
        """Cancel ``task`` now, as if its deadline had passed, if it is armed and not cancelled
        for its deadline yet; True if so. :meth:`was_cut` then tells it from a timeout."""
        if task not in self._due or task in self._expired or task.done():
            return False
        self._expired.add(task)
        self._cut.add(task)
        task.cancel()
        return True

    def was_cut(self, task: asyncio.Task[Any]) -> bool:
        """Whether ``task``'s cancellation came from :meth:`cut` (ask before :meth:`disarm`)."""
        return task in self._cut

    def disarm(self, task: asyncio.Task[Any]) -> bool:
        """Forget ``task``'s deadline. True when it had passed: the task was cancelled for it.

        The caller then takes that cancellation back with ``task.uncancel()``; a non-zero
        answer means the task was cancelled by someone else too (e.g. a shutdown), and that
        cancellation goes on.
        """
        self._due.pop(task, None)
        if self._expired and task in self._expired:
            self._expired.discard(task)
            self._cut.discard(task)
            return True
        return False

    def close(self) -> None:
        """Stop the timer; forget every deadline (their tasks are not cancelled)."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._when = None, math.inf
        self._due.clear()
        self._expired.clear()
        self._cut.clear()

    def _set(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._when = loop.call_at(when, self._fire, loop), when

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer, self._when = None, math.inf
        now = loop.time() + 0.001  # a loop may run a timer up to its clock's resolution early
        earliest = math.inf
        for task, when in self._due.items():
            if when <= now:
                if task not in self._expired and not task.done():
                    self._expired.add(task)
                    task.cancel()
            elif when < earliest:
                earliest = when
        if earliest < math.inf:
            self._set(loop, earliest)
