"""One leasing loop for every consumer: ack, take the limits' grant, lease, sleep until work.

The Worker, the push dispatcher and the HTTP long-poll reserve all lease jobs the same way,
through a :class:`Lessee` (one topic, one consumer):

- **One round trip** acks the jobs finished since the last one, frees their concurrency
  slots and leases as many new jobs as the consumer's :class:`Capacity` wants, in script calls
  of :data:`CALL_JOBS` jobs at most (no call holds Redis long). A topic with
  ``concurrency`` or ``rate`` set takes ``limit.lua``'s grant in that round trip and leases
  what was granted in a second one; a topic without limits pays nothing for them.
- The topic's limits are read with the acks (no round trip of their own) every
  :data:`LIMITS_TTL` seconds, shared by every lessee of a :class:`LimitsCache`.
- **No polling**: with nothing to lease, the loop sleeps until the lease's ``next_due_ms``
  (one alarm on the server's clock, sub-millisecond, see :mod:`redisched.timing`), the next
  reservation deadline (then it requeues), a limit's retry time, a wake-up message on the
  topic's channel, or a local kick (a finished job); :data:`MAX_IDLE` at most, in case a
  wake-up was lost.
- A busy consumer lets finished jobs gather for up to :data:`ACK_DELAY` so that one round
  trip acks and refills many; one woken from an idle sleep leases :data:`WAKE_LEASE` job first
  (the first due job starts sooner); Redis failures back off by one formula
  (:func:`redis_pause`).

A topic's ``concurrency`` counts its reserved jobs, whoever leased them, plus the slots
``limit.lua`` granted for leases not yet made: the round trip that leases frees those slots,
so a job's place comes back when it leaves the reserved set by any path (an ack from another
process or over HTTP, a delete, a timeout), and the script that frees it wakes a consumer
waiting for room. A crashed consumer's slots lapse after their hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import validate
from .client import AsyncClient
from .errors import BackendError
from .limits import Grant, limit_step, parse_grant
from .models import Job, Lease
from .ops import Call
from .timing import ServerClock
from .topic_config import TopicConfig
from .wakeup import Wakeups

log = logging.getLogger(__name__)

MAX_IDLE = 10.0
"""Seconds an idle consumer sleeps at most, in case a wake-up message was lost."""
ACK_DELAY = 0.005
"""Seconds a finished job's ack may wait to share a round trip with others."""
MAX_LEASE = validate.MAX_COUNT
"""Jobs leased at most per round trip."""
CALL_JOBS = 100
"""Jobs one script call acks or leases at most. A round trip that acks or leases more sends
several calls in one pipeline: Redis runs one script at a time, and a call costs ~10-20 µs of
Redis time per job, so this bounds every call of a consumer to a few ms (docs/design.md)."""
WAKE_LEASE = 1
"""Jobs the first round trip after an idle sleep leases at most: the first due job starts
after a one-job lease, and the rest are leased while it runs."""
LIMITS_TTL = 2.0
"""Seconds a consumer trusts what it read of a topic's ``concurrency`` and ``rate``."""
HOLD_MARGIN = 10.0
"""Seconds a concurrency slot outlasts the lease it was granted for (a crashed holder's
slot comes back after that)."""
DEFAULT_HOLD = 60.0
"""Seconds a slot is held when the lease names no ttr (the built-in default ttr)."""


def _calls(count: int) -> list[tuple[int, int]]:
    """``count`` jobs as script calls of :data:`CALL_JOBS` at most: (first, size) each."""
    return [(at, min(CALL_JOBS, count - at)) for at in range(0, count, CALL_JOBS)]


def redis_pause(failures: int) -> float:
    """Seconds to wait after ``failures`` consecutive Redis failures (50 ms doubling to 5 s)."""
    return float(min(0.05 * 2 ** max(0, failures - 1), 5.0))


@dataclass(frozen=True, slots=True)
class Limits:
    """A topic's limits as last read: ``concurrency`` (jobs at once) and ``rate`` (per s)."""

    concurrency: int | None = None
    rate: float | None = None

    @property
    def limited(self) -> bool:
        """True when a grant must be taken before leasing."""
        return self.concurrency is not None or self.rate is not None

    @classmethod
    def of(cls, config: TopicConfig) -> Limits:
        """The limits of a topic's settings."""
        return cls(config.concurrency, config.rate)


@dataclass
class LimitsCache:
    """Each topic's limits as read by this process, trusted for ``ttl`` seconds."""

    ttl: float = LIMITS_TTL
    clock: Callable[[], float] = time.monotonic
    _seen: dict[str, tuple[Limits, float]] = field(default_factory=dict)

    def get(self, topic: str) -> Limits | None:
        """The limits, or None when unknown or too old."""
        entry = self._seen.get(topic)
        if entry is None or self.clock() - entry[1] > self.ttl:
            return None
        return entry[0]

    def last(self, topic: str) -> Limits | None:
        """The limits last read, however old (None: never read)."""
        entry = self._seen.get(topic)
        return None if entry is None else entry[0]

    def set(self, topic: str, limits: Limits) -> None:
        """Remember the topic's limits as read now."""
        if len(self._seen) >= 10_000:
            self._seen.clear()
        self._seen[topic] = (limits, self.clock())


@dataclass(slots=True)
class Round:
    """What one exchange with Redis gave.

    Attributes:
        wanted: how many jobs were asked for.
        jobs: the jobs leased (each holds its concurrency place as a reservation; the
            grant's slots go back with the next round trip).
        acked: for each job acked by the exchange, True if the ack applied (False: stale).
        done: the jobs acked by the exchange, in the order of ``acked``.
        now_ms: the server's clock.
        next_due_ms: the earliest scheduled run_at, if any.
        next_timeout_ms: the earliest reservation deadline, if any.
        retry_ms: when a limit held jobs back, ms after which asking again may succeed.
    """

    wanted: int
    jobs: list[Job]
    acked: list[bool]
    done: list[Job]
    now_ms: int | None = None
    next_due_ms: int | None = None
    next_timeout_ms: int | None = None
    retry_ms: int | None = None

    @property
    def saturated(self) -> bool:
        """True when every job asked for was leased: more may be waiting."""
        return self.wanted > 0 and len(self.jobs) == self.wanted


class Capacity(Protocol):
    """How many jobs a consumer takes: worker slots, a dispatcher's deliveries, a request."""

    def want(self) -> int:
        """Jobs to lease now (0: none)."""

    def size(self) -> int:
        """Jobs the consumer holds at most; a busy consumer refills in batches of a tenth."""

    def busy(self) -> bool:
        """True while some of its jobs run (finished ones will free room soon)."""

    def take(self, count: int) -> None:
        """``count`` jobs are being leased (given back with :meth:`give` if not all came)."""

    def give(self, count: int) -> None:
        """``count`` of the jobs taken did not come."""

    def start(self, lessee: Lessee, jobs: list[Job]) -> None:
        """Run the leased jobs (call ``lessee.finish`` when each ends)."""


class Lessee:
    """One consumer's leasing of one topic.

    Args:
        client: the AsyncClient to lease through.
        topic: the topic.
        wakeups: the process's wake-up hub (its alarm thread times the sleeps).
        ttr: seconds each lease lasts (None: each job's own ttr).
        hold: seconds a concurrency slot is held at most (None: ``ttr`` or the built-in
            60 s, plus :data:`HOLD_MARGIN`).
        limits: the process's cache of topic limits (None: one of its own).
        clock: the server clock estimate to keep (None: one of its own).
        on_round: called with each exchange's result (e.g. to count acks).
    """

    def __init__(
        self,
        client: AsyncClient,
        topic: str,
        wakeups: Wakeups,
        *,
        ttr: float | None = None,
        hold: float | None = None,
        limits: LimitsCache | None = None,
        clock: ServerClock | None = None,
        on_round: Callable[[Round], None] | None = None,
    ) -> None:
        self.client = client
        self.topic = topic
        self.wakeups = wakeups
        self.ttr = ttr
        self.hold_ms = round(1000 * (hold or ((ttr or DEFAULT_HOLD) + HOLD_MARGIN)))
        self.limits = limits or LimitsCache()
        self.clock = clock or ServerClock()
        self.on_round = on_round
        self.kick = asyncio.Event()
        self.done: list[Job] = []
        self.done_since = 0.0
        self.freed: list[str] = []
        self.unsure: set[str] = set()  # tokens whose ack call failed in transit
        self.results: dict[str, bytes] = {}  # token -> the result to ack the job with
        self.requeue_at: int | None = None
        self.failures = 0
        self.saturated = False
        self.starved = False  # waiting for the consumer to have room
        # the last step slept for want of work, or none ran yet: lease WAKE_LEASE first (a
        # consumer's slots are shared by its topics: a first lease of a topic whose Cluster
        # primary is down held every free slot while it waited out retry_for)
        self.woke = True
        self.aimed_ms: int | None = None  # the run_at the last sleep's alarm woke ahead of
        self.patient = False  # the last lease ahead came early: the next sleep takes no lead
        self.gather = 0  # jobs to finish before a gathering loop acts (0: wake on each one)
        self._forwarder: asyncio.Task[None] | None = None

    # -- lifetime ---------------------------------------------------------------------------

    async def watch(self) -> None:
        """Subscribe to the topic's wake-ups (before the first lease: none is missed)."""
        await self.wakeups.watch(self.topic)
        if self._forwarder is None:
            self._forwarder = asyncio.create_task(
                self._forward(), name=f"redisched-lease-wakeups {self.topic}"
            )

    async def close(self) -> None:
        """Stop forwarding wake-ups."""
        if self._forwarder is not None:
            self._forwarder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._forwarder
            self._forwarder = None

    async def _forward(self) -> None:
        while True:
            since = self.wakeups.generation(self.topic)
            await self.wakeups.wait(self.topic, since, None)
            self.kick.set()

    # -- jobs that end ----------------------------------------------------------------------

    def finish(self, job: Job | None, result: bytes | None = None) -> None:
        """A job ended: ack it (``job``; None if it was released; ``result`` is kept in its
        history) with the next round trip, and wake the loop (a gathering loop only once
        enough jobs ended to refill, or on the first ack to send)."""
        first = False
        if job is not None:
            if result is not None and job.token:
                self.results[job.token] = result
            if not self.done:
                self.done_since = time.time()
                first = True  # the gathering sleep has no deadline yet
            self.done.append(job)
        if self.gather > 0:
            self.gather -= 1
        if not self.gather or first:
            self.kick.set()

    @property
    def pending(self) -> bool:
        """True while acks or freed slots wait for a round trip."""
        return bool(self.done or self.freed)

    # -- one exchange -----------------------------------------------------------------------

    async def exchange(self, want: int, retry_for: float | None = None) -> Round:
        """Ack what finished, free slots, lease up to ``want`` jobs (granted by the limits);
        ``retry_for`` as :meth:`~redisched.AsyncClient.execute`'s."""
        ops, topic, client = self.client.ops, self.topic, self.client
        done, self.done = self.done, []
        freed, self.freed = self.freed, []
        limits = self.limits.get(topic)
        known = limits or self.limits.last(topic)
        limited = known is None or known.limited or bool(freed)
        results = [self.results.get(job.token or "") for job in done] if self.results else None
        parts: list[Call[Any]] = [
            ops.ack_leased(topic, done[at : at + n], results=results and results[at : at + n])
            for at, n in _calls(len(done))
        ] or [ops.ack_leased(topic, [])]
        acks = len(parts)
        if limits is None:
            parts.append(ops.config(topic))
        leases = len(parts)
        if limited:
            step = limit_step(ops, topic, want, self.hold_ms, freed)
            parts.append(Call((step,), lambda r: parse_grant(r[0])))
        elif want > 0:
            parts += self._lease_calls(want)
        sent = time.time()
        try:
            replies = await client.execute(Call.join(*parts), retry_for=retry_for)
        except BaseException:
            self.done[:0] = done  # acked again later: a token is never applied twice
            self.freed[:0] = freed
            self.unsure.update(job.token for job in done if job.token)
            raise
        received = time.time()
        for job in done if self.results else ():
            self.results.pop(job.token or "", None)
        acked: list[bool] = [flag for reply in replies[:acks] for flag in reply]
        if limits is None:
            self.limits.set(topic, Limits.of(replies[acks]))
        result = Round(want, [], acked, done)
        if not limited:
            if want > 0:
                self._take_lease(result, replies[leases:], sent, received)
            return result
        grant: Grant = replies[-1]
        self.clock.observe(grant.now_ms, sent, received)
        result.now_ms, result.retry_ms = grant.now_ms, grant.retry_ms
        result.next_due_ms, result.next_timeout_ms = grant.next_due_ms, grant.next_timeout_ms
        if not grant.granted:
            return result
        sent = time.time()
        try:
            leased = await client.execute(Call.join(*self._lease_calls(grant.granted)))
        finally:
            # The leased jobs hold their places as reservations now (a place is free again
            # when its job leaves the reserved set, whoever acks, releases, buries or deletes
            # it), so the grant's slots go back with the next round trip. Not in this one: a
            # step after the lease may run before it (a NOSCRIPT retry runs the lease again).
            self.freed.extend(grant.slots)
        self._take_lease(result, leased, sent, time.time())
        result.wanted = grant.granted if grant.granted < want else want
        return result

    def _lease_calls(self, count: int) -> list[Call[Lease]]:
        # own: a Worker, the push dispatcher and the HTTP reserves serve a partitioned topic's
        # own name beside its partitions, where an empty lease is no error
        ops = self.client.ops
        return [ops.lease(self.topic, n, ttr=self.ttr, own=True) for _, n in _calls(count)]

    def _take_lease(self, result: Round, leases: list[Lease], sent: float, received: float) -> None:
        """The jobs of one round trip's leases, in order; the clock and the times ahead from
        the last of them (the latest state of the topic)."""
        last = leases[-1]
        self.clock.observe(last.now_ms, sent, received)
        result.jobs = leases[0].jobs if len(leases) == 1 else [j for x in leases for j in x.jobs]
        result.now_ms = last.now_ms
        result.next_due_ms = last.next_due_ms
        result.next_timeout_ms = last.next_timeout_ms
        if self.aimed_ms is not None:
            self.judge_lead(self.aimed_ms, result)
            self.aimed_ms = None

    async def requeue(self) -> None:
        """Return timed-out reservations to the queue; remember the next deadline."""
        self.requeue_at = await self.client.execute(self.client.ops.requeue_due(self.topic))

    # -- sleeping ---------------------------------------------------------------------------

    async def sleep_until(self, when: float | None) -> bool:
        """Sleep until local epoch ``when`` (None: :data:`MAX_IDLE`) or a kick; True if the
        alarm ended it."""
        wake_at = time.time() + MAX_IDLE
        if when is not None:
            wake_at = min(wake_at, when)
        alarm = self.wakeups.alarm.set_at(wake_at, self.kick)
        try:
            await self.kick.wait()
        finally:
            alarm.cancel()
        return alarm.fired

    async def gather_until(self, when: float) -> None:
        """Sleep until local epoch ``when`` or a kick, on the event loop's own timer: gathering
        acks needs no precise wake-up, and on a busy loop each alarm would cost a thread
        switch and wait for the alarm thread's turn at the GIL."""
        timer = asyncio.get_running_loop().call_later(max(0.0, when - time.time()), self.kick.set)
        try:
            await self.kick.wait()
        finally:
            timer.cancel()

    async def sleep(self, result: Round, *, until: float | None = None) -> None:
        """Sleep until there is work: the next job due, a deadline, a limit's retry, a kick,
        or local epoch ``until``."""
        now_ms = result.now_ms
        next_due = result.next_due_ms
        if next_due is not None and now_ms is not None and next_due <= now_ms:
            next_due = None  # due jobs yet nothing leased: paused, or held by a limit
        deadlines = [ms for ms in (next_due, self.requeue_at) if ms is not None]
        if result.retry_ms is not None and now_ms is not None:
            deadlines.append(now_ms + result.retry_ms)
        when = self.clock.local_time(min(deadlines)) if deadlines else None
        aim = next_due if next_due is not None and min(deadlines) == next_due else None
        if aim is not None and when is not None and not self.patient:
            when -= self.clock.lead.seconds  # see timing.Lead
        self.patient = False
        if until is not None and (when is None or until < when):
            when, aim = until, None
        if await self.sleep_until(when) and aim is not None:
            self.aimed_ms = aim

    def judge_lead(self, aimed_ms: int, result: Round) -> None:
        """Teach the clock's lead from a lease sent ahead of the job due at ``aimed_ms``."""
        if result.jobs:
            self.clock.lead.met()
        elif (
            result.now_ms is not None
            and result.next_due_ms is not None
            and result.now_ms < result.next_due_ms <= aimed_ms
        ):
            self.clock.lead.missed()
            self.patient = True  # one more round trip at most for this job

    async def nap(self, seconds: float) -> None:
        """Sleep ``seconds`` or until a kick."""
        await self.sleep_until(time.time() + seconds)

    # -- the loop ---------------------------------------------------------------------------

    async def run(self, capacity: Capacity, stopping: Callable[[], bool]) -> None:
        """Lease for ``capacity`` until ``stopping()``; then flush what waits to be acked.

        Redis failures are logged and retried after :func:`redis_pause`.
        """
        while not stopping():
            try:
                await self.step(capacity, stopping)
                self.failures = 0
            except BackendError as exc:
                self.failures += 1
                pause = redis_pause(self.failures)
                log.warning("topic %r: %s; retrying in %.2f s", self.topic, exc, pause)
                await self.nap(pause)
        await self.flush()

    async def step(self, capacity: Capacity, stopping: Callable[[], bool]) -> None:
        """One turn: requeue if a deadline passed, else ack + lease, then sleep if idle."""
        self.kick.clear()  # from here on, a wake-up (or a finished job) ends the next sleep
        if self.requeue_at is not None and self.clock.now_ms() >= self.requeue_at:
            if self.pending:
                # Ack what finished first: after an outage longer than a ttr, the acks that
                # failed meanwhile are of reservations now past their deadline, and requeued
                # first those jobs ran again (an ack applies until the requeue).
                self.report(await self.exchange(0))
            await self.requeue()
            return
        want = min(capacity.want(), MAX_LEASE)
        if self.woke or self.failures:
            # after a failure, a probe of one job, tried once: the slots it takes from a
            # consumer that serves other topics too are held for the call's length
            self.woke = False
            want = min(want, WAKE_LEASE)
        refill_at = max(1, capacity.size() // 10)
        if want <= 0 or (want < refill_at and self.saturated and capacity.busy()):
            # Few free slots while more jobs wait: let finished jobs gather a while, so that
            # one round trip acks and refills many. Acks wait ACK_DELAY at most.
            if not self.pending or time.time() < self.done_since + ACK_DELAY:
                self.starved = want <= 0
                # each finished job adds one to want: wake when it reaches refill_at (a kick
                # per job cost a loop turn and a timer each), or when acks waited ACK_DELAY
                self.gather = refill_at - want
                try:
                    await self.gather_until(
                        self.done_since + ACK_DELAY if self.pending else time.time() + MAX_IDLE
                    )
                finally:
                    self.starved = False
                    self.gather = 0
                return
            if want <= 0:
                # One ack round trip, then decide again. flush() here went on acking as long
                # as jobs finished during each round trip, leasing nothing until the consumer
                # ran dry: a busy push dispatcher's places all stood idle every few round
                # trips, then all started at once. (A failed ack is retried by run().)
                self.report(await self.exchange(0))
                return
        capacity.take(want)
        try:
            result = await self.exchange(want, 0 if self.failures else None)
        except BaseException:
            capacity.give(want)
            raise
        capacity.give(want - len(result.jobs))
        self.report(result)
        self.saturated = result.saturated
        if result.jobs:
            # Even when stopping: these run within the grace period, as releasing them
            # would spend an attempt of jobs that never ran.
            capacity.start(self, result.jobs)
        self.requeue_at = result.next_timeout_ms
        if stopping() or self.saturated or self.freed:
            return
        now_ms = result.now_ms
        if self.requeue_at is not None and now_ms is not None and self.requeue_at <= now_ms:
            await self.requeue()
            return
        await self.sleep(result)
        self.woke = True

    async def flush(self) -> None:
        """Ack what finished and free slots now (lease nothing)."""
        while self.pending:
            try:
                self.report(await self.exchange(0))
            except BackendError as exc:
                log.warning(
                    "could not ack %d jobs of %r (%s); they return after their ttr",
                    len(self.done), self.topic, exc,
                )  # fmt: skip
                self.done, self.freed = [], []
                self.results.clear()
                return

    def report(self, result: Round) -> None:
        """Log acks that did not apply; pass the result to ``on_round``."""
        if self.on_round is not None:
            self.on_round(result)
        for job, ok in zip(result.done, result.acked, strict=True):
            if job.token in self.unsure:
                self.unsure.discard(job.token)
                if not ok:  # most likely acked by the call that seemed to fail
                    log.info("job %r of topic %r: acked by an earlier call", job.id, self.topic)
            elif not ok:
                log.warning(
                    "job %r of topic %r: ack rejected, the reservation was lost (timed out and"
                    " requeued, deleted or re-reserved); the result is not applied",
                    job.id, self.topic,
                )  # fmt: skip


__all__ = [
    "ACK_DELAY",
    "CALL_JOBS",
    "MAX_IDLE",
    "WAKE_LEASE",
    "Capacity",
    "Lessee",
    "Limits",
    "LimitsCache",
    "Round",
    "redis_pause",
]
