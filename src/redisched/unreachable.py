"""Topics Redis could not serve lately (their Redis Cluster primary down), passed over a while."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

UNREACHABLE_FOR = 30.0
"""Seconds a topic whose call failed with a BackendError is passed over: finding out again
costs the call that tries it the client's ``retry_for`` (10 s on a cluster)."""


@dataclass
class Unreachable:
    """Which topics failed lately, and until when (by ``clock``) they are passed over.

    I/O-free: the callers say what failed (:meth:`failed`) and what answered (:meth:`answered`).

    Args:
        period: seconds a failed topic is passed over.
        clock: a monotonic clock, in seconds.
    """

    period: float = UNREACHABLE_FOR
    clock: Callable[[], float] = time.monotonic
    until: dict[str, float] = field(default_factory=dict)

    def skipped(self, name: str) -> bool:
        """Whether ``name`` failed less than :attr:`period` ago (so is not to be tried now)."""
        return self.until.get(name, 0.0) > self.clock()

    def probing(self, name: str) -> bool:
        """Whether ``name`` failed before and its :attr:`period` is over: try it on its own,
        once (a call joined with it would wait out the client's retries again)."""
        return name in self.until and not self.skipped(name)

    def failed(self, name: str) -> None:
        """``name`` failed now: pass it over for :attr:`period`."""
        self.until[name] = self.clock() + self.period

    def answered(self, name: str) -> None:
        """``name`` answered: try it again from now on."""
        self.until.pop(name, None)
