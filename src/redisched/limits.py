"""A topic's concurrency and rate limits held in Redis (limit.lua): the call and its reply.

The limits hold across every consumer on one Redis (Workers in any process, HTTP reserves,
webhook pushes), so they live in Redis: a sorted set of named slots with expiry (a semaphore
whose holders may crash) and a token bucket, both under the topic's hash tag. A consumer
frees the slots of finished jobs and asks for new ones in the same round trip as its acks
(see :mod:`redisched.leasing`). A webhook receiver's own back-pressure (429/503 with
Retry-After) is counted in the topic's ``total_throttled`` (:func:`count_throttled`). No I/O
here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import validate
from .ops import Call, Operations, Step


@dataclass(frozen=True, slots=True)
class Grant:
    """What limit.lua granted.

    Attributes:
        now_ms: the server's clock.
        granted: how many jobs may be leased and delivered now.
        slots: the names of the granted concurrency slots (empty without a concurrency limit);
            free each one when its delivery ends.
        retry_ms: when a limit held the grant back, ms until asking again may succeed.
        next_due_ms: the earliest scheduled run_at, if any.
        next_timeout_ms: the earliest reservation deadline, if any.
    """

    now_ms: int
    granted: int
    slots: list[str]
    retry_ms: int | None
    next_due_ms: int | None
    next_timeout_ms: int | None


def _optional(value: int) -> int | None:
    return None if value < 0 else int(value)


def parse_grant(reply: Sequence[Any]) -> Grant:
    """Read the reply of limit.lua."""
    now, granted, retry, next_due, next_timeout, *slots = reply
    return Grant(
        now_ms=int(now),
        granted=int(granted),
        slots=[s.decode() if isinstance(s, bytes) else str(s) for s in slots],
        retry_ms=_optional(retry),
        next_due_ms=_optional(next_due),
        next_timeout_ms=_optional(next_timeout),
    )


def limit_step(ops: Operations, topic: str, want: int, hold_ms: int, freed: Sequence[str]) -> Step:
    """The limit.lua step: free ``freed`` slots, then ask for ``want`` deliveries."""
    count = validate.integer(want, "want", 0, validate.MAX_COUNT)
    hold = validate.integer(hold_ms, "hold_ms", 1, validate.MAX_TTR_MS)
    return ops._step("limit", topic, ops._now(), count, hold, *freed)


def ack_and_grant(
    ops: Operations,
    topic: str,
    done: Sequence[Any],
    freed: Sequence[str],
    want: int,
    hold_ms: int,
) -> Call[tuple[list[bool], Grant]]:
    """Ack delivered jobs, free their slots and ask for more, in one round trip.

    Returns one flag per job of ``done`` (False: the reservation was lost) and the grant.
    """
    grant = Call((limit_step(ops, topic, want, hold_ms, freed),), lambda r: parse_grant(r[0]))
    return Call.join(ops.ack_many(topic, done), grant).map(lambda r: (r[0], r[1]))


THROTTLED = "total_throttled"
"""The field of the topic's meta hash counting webhook deliveries the receiver throttled."""


def count_throttled(ops: Operations, topic: str) -> Call[int]:
    """Count one throttled webhook delivery of ``topic``; returns the new total."""
    meta = ops.keys(topic).name("meta")
    return Call((Step(None, (), ("HINCRBY", meta, THROTTLED, 1)),), lambda r: int(r[0]))


def read_throttled(ops: Operations, topic: str) -> Call[int]:
    """The topic's count of throttled webhook deliveries (0 when none was)."""
    meta = ops.keys(topic).name("meta")
    return Call((Step(None, (), ("HGET", meta, THROTTLED)),), lambda r: int(r[0] or 0))
