"""How a failed job is retried: ``Retry`` (a handler's request) and ``Backoff`` (the default),
or ``TopicBackoff`` (parts of it left to each topic's settings)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from . import validate
from .errors import InvalidArgument


class Retry(Exception):
    """Raised by a handler to release its job and run it again after ``delay`` seconds.

    The attempt still counts: a job whose ``max_attempts`` are used up goes to dead.

    Args:
        delay: seconds (or a timedelta) until the job is due again; 0 = at once.
        reason: kept as the job's ``last_error`` (default: "retry requested").
    """

    def __init__(self, delay: float | timedelta = 0, reason: str | None = None) -> None:
        self.delay_ms = validate.duration_ms(delay, "delay")
        self.reason = "retry requested" if reason is None else validate.text(reason, "reason")
        super().__init__(f"{self.reason} (in {self.delay_ms / 1000:g} s)")

    @property
    def delay(self) -> float:
        """The requested delay in seconds."""
        return self.delay_ms / 1000


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter: the delay before a failed job runs again.

    Attempt ``n`` (1 = the first run) waits ``min(max, base * 2 ** (n - 1))`` seconds, minus
    up to ``jitter`` of it at random, so that jobs failing together do not retry together.

    Args:
        base: seconds (or a timedelta) after the first failed attempt.
        max: the longest delay, seconds (or a timedelta).
        jitter: the fraction of the delay taken off at random, 0 to 1.

    ``base`` and ``max`` are kept as float seconds, whichever form they were given in.
    """

    base: float = 1.0
    max: float = 3600.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        validate.duration_ms(self.base, "backoff.base")
        for name in ("base", "max"):  # a timedelta (as validate takes) kept as seconds
            value = getattr(self, name)
            if isinstance(value, timedelta):
                object.__setattr__(self, name, value.total_seconds())
        if validate.duration_ms(self.max, "backoff.max") < validate.duration_ms(
            self.base, "backoff.base"
        ):
            raise InvalidArgument("backoff.max", "must be at least backoff.base")
        if (
            not isinstance(self.jitter, (int, float))
            or isinstance(self.jitter, bool)
            or not 0 <= self.jitter <= 1
        ):
            raise InvalidArgument("backoff.jitter", "must be a number from 0 to 1")

    def ceiling(self, attempt: int) -> float:
        """The delay in seconds after attempt ``attempt``, before jitter."""
        exponent = min(max(attempt, 1) - 1, 64)  # 2**64 s is far past any max
        return float(min(self.max, self.base * 2**exponent))

    def delay(self, attempt: int) -> float:
        """The delay in seconds after attempt ``attempt`` (1 = the first run), with jitter."""
        return self.ceiling(attempt) * (1 - self.jitter * random.random())


@dataclass(frozen=True, slots=True)
class TopicBackoff:
    """A backoff that leaves ``base``, ``max`` or both to each topic's settings.

    A Worker given one reads each topic's ``backoff`` and ``backoff_max`` settings at start
    (else ``Backoff()``'s) and fills in the parts left as None (:meth:`for_topic`);
    ``TopicBackoff()`` is what a Worker without a ``backoff`` uses.
    ``redisched worker --backoff`` or ``--backoff-max`` alone passes one.

    Args:
        base: seconds (or a timedelta) after the first failed attempt; None: the topic's.
            With ``max`` None, the topic's longest delay is raised to it when below it.
        max: the longest delay, seconds (or a timedelta); None: the topic's. Given alone, it
            caps the topic's first delay too.
        jitter: the fraction of the delay taken off at random, 0 to 1.
    """

    base: float | None = None
    max: float | None = None
    jitter: float = 0.2

    def __post_init__(self) -> None:
        for name in ("base", "max"):
            value = getattr(self, name)
            if value is not None:
                seconds = validate.duration_ms(value, f"backoff.{name}") / 1000
                object.__setattr__(self, name, seconds)
        if self.base is not None and self.max is not None and self.max < self.base:
            raise InvalidArgument("backoff.max", "must be at least backoff.base")
        Backoff(jitter=self.jitter)  # the same check of the jitter

    def for_topic(self, topic_base: float | None, topic_max: float | None) -> Backoff:
        """The Backoff of a topic whose settings are ``topic_base`` and ``topic_max`` (None:
        not set, ``Backoff()``'s)."""
        default = Backoff()
        base = default.base if topic_base is None else topic_base
        ceiling = default.max if topic_max is None else topic_max
        if self.base is not None:
            base = self.base
        if self.max is None:
            ceiling = max(base, ceiling)
        else:
            ceiling = self.max
            base = min(base, ceiling)
        return Backoff(base, ceiling, self.jitter)
