"""The values the clients return: jobs, put results, topic statistics."""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

DEFAULT_MAX_ATTEMPTS = 25
"""Attempts a job gets when neither the put nor its topic says (like Sidekiq's 25 retries).

The scripts hold the default (``put.lua``); this mirrors it for documentation and help texts.
A job goes dead after its 25th failed attempt; give a larger ``max_attempts`` for more."""


class JobState(enum.StrEnum):
    """Where a job is in its lifecycle (docs/design.md section 2)."""

    SCHEDULED = "scheduled"
    READY = "ready"
    RESERVED = "reserved"
    DEAD = "dead"


class PutStatus(enum.StrEnum):
    """What a put did."""

    CREATED = "created"
    EXISTS = "exists"
    REPLACED = "replaced"
    PENDING = "pending"


@dataclass(frozen=True, slots=True)
class PutResult:
    """The outcome of one put.

    Attributes:
        status: created, exists (nothing changed), replaced, or pending (the job is reserved;
            the new version is scheduled when the running attempt ends).
        version: the job's version after the put (the current one for ``exists``).
    """

    status: PutStatus
    version: int


@dataclass(frozen=True, slots=True)
class Job:
    """A job as stored, or as leased by ``reserve`` (then with a ``token``).

    Times are aware UTC datetimes; ``ttr`` is in seconds; ``max_attempts`` is None when
    unlimited (only jobs stored before the default of 25 existed); ``pending_version`` is set
    while a replacement waits for the running attempt. ``cancellation`` is the flag a Worker
    sets when the running job is cancelled: a sync handler's job has one from the start, an
    async handler's only once it is cancelled (None otherwise: nothing is spent per job).
    An ``id`` stored by a raw script call as bytes that are not UTF-8 is those bytes decoded
    with ``surrogateescape``; the client's calls send it back as the same bytes.
    """

    topic: str
    id: str
    body: bytes
    state: JobState
    run_at: datetime
    priority: int
    ttr: float
    attempts: int
    max_attempts: int | None
    version: int
    token: str | None
    reserved_until: datetime | None
    last_error: str | None
    pending_version: int | None = None
    cancellation: Cancellation | None = field(default=None, compare=False, repr=False)

    @property
    def cancelled(self) -> bool:
        """True once the Worker running this job learned that it was deleted, replaced,
        expired, purged or aborted: a sync handler should stop (an async one is cancelled)."""
        return self.cancellation is not None and self.cancellation.is_set()


class Cancellation:
    """A flag a running job's handler can check (thread-safe): set when the job is cancelled.

    Cheap to make (a sync handler's job carries one from the start, an async handler's only
    once cancelled): the event behind :meth:`wait` is created only when someone waits.
    """

    __slots__ = ("_event", "_flag", "reason")

    def __init__(self) -> None:
        self._flag = False
        self._event: threading.Event | None = None
        self.reason = ""

    def set(self, reason: str) -> None:
        """Mark the job cancelled, saying why."""
        self.reason = reason
        self._flag = True
        event = self._event
        if event is not None:
            event.set()

    def is_set(self) -> bool:
        """True once cancelled."""
        return self._flag

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled (True) or ``timeout`` seconds passed (False)."""
        if self._flag:
            return True
        if self._event is None:
            self._event = threading.Event()
        if self._flag:  # set() ran before the event existed
            return True
        return self._event.wait(timeout)


@dataclass(frozen=True, slots=True)
class TopicStats:
    """Counts of a topic's jobs per state, and totals since the topic was created.

    ``finished_*`` count the jobs that ended with each outcome (done, cancelled, dead, pulled,
    aborted).
    """

    topic: str
    scheduled: int
    ready: int
    reserved: int
    dead: int
    paused: bool
    next_due: datetime | None
    total_put: int
    total_reserved: int
    total_acked: int
    total_released: int
    total_requeued: int
    total_dead: int
    total_pulled: int
    finished_done: int = 0
    finished_cancelled: int = 0
    finished_dead: int = 0
    finished_pulled: int = 0
    finished_aborted: int = 0


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of a job listing; pass ``cursor`` back to get the next page (None at the end)."""

    jobs: list[Job]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class Lease:
    """Jobs leased by reserve, with the server's clock and when work is next due.

    All three times are epoch milliseconds by the clock the scripts used (``now_ms``):
    ``next_due_ms`` is the earliest scheduled run_at and ``next_timeout_ms`` the earliest
    reservation deadline, each None when there is none; a worker sleeps until the sooner of
    the two instead of polling.
    """

    jobs: list[Job]
    now_ms: int
    next_due_ms: int | None
    next_timeout_ms: int | None


@dataclass(frozen=True, slots=True)
class Timeline:
    """How many scheduled jobs fall due in each step ahead, and how long ready jobs have waited.

    ``counts[i]`` counts the jobs due in ``(now + i * width, now + (i + 1) * width]``;
    ``width`` is in seconds. ``oldest_ready`` is the earliest run_at of the job taken next and
    of the due jobs not yet promoted (None when nothing is ready).
    """

    topic: str
    now: datetime
    width: float
    counts: list[int]
    oldest_ready: datetime | None


class Outcome(enum.StrEnum):
    """How a job ended: acked, deleted by id, dead and then removed, pulled, or aborted."""

    DONE = "done"
    CANCELLED = "cancelled"
    DEAD = "dead"
    PULLED = "pulled"
    ABORTED = "aborted"


class EventKind(enum.StrEnum):
    """What happened to a job (one :class:`JobEvent` each)."""

    PUT = "put"
    REPLACED = "replaced"
    RESERVED = "reserved"
    RELEASED = "released"
    REQUEUED = "requeued"
    RETRIED = "retried"
    TOUCHED = "touched"
    BURIED = "buried"
    DEAD = "dead"
    KICKED = "kicked"
    ACKED = "acked"
    DELETED = "deleted"
    PULLED = "pulled"
    EXPIRED = "expired"
    ABORTED = "aborted"


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One thing that happened to a job.

    Attributes:
        at: when (aware UTC datetime).
        kind: what happened.
        version: the job's version after the event.
        attempt: the job's attempt count after the event.
        detail: a note (an error, a truncated result), or None.
        id: the job's id (set in a topic's feed; a job's own history knows it already).
        cursor: where this event sits in the topic's feed; pass it as ``after`` to read on
            (None in a job's own history).
    """

    at: datetime
    kind: EventKind
    version: int
    attempt: int
    detail: str | None = None
    id: str | None = None
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class JobHistory:
    """A job's life: its events oldest first and, once it ended, how and with what result.

    ``outcome`` and ``finished_at`` are None while the job lives. ``result`` is what the
    handler returned (bytes), or a webhook receiver's status and first bytes of its answer.
    """

    topic: str
    id: str
    outcome: Outcome | None
    finished_at: datetime | None
    version: int
    attempts: int
    result: bytes | None
    last_error: str | None
    events: list[JobEvent]


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One page of finished jobs, most recent first (``events`` are left out: read them with
    ``history``); pass ``cursor`` back for the next page (None at the end)."""

    jobs: list[JobHistory]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class Schedule:
    """A recurring schedule: its occurrences are jobs ``<id>@<UTC time>`` with its body.

    Exactly one of ``cron`` (a 5-field crontab in ``tz``) and ``every`` is set. ``next_run_at``
    is the occurrence now pending (None once the schedule has ended, or while a cron schedule
    waits for more of its times to be computed); ``last_run_at`` the latest occurrence handed
    to a consumer, or skipped by deleting it while pending (one moved past now: where it was
    moved, to the second). Times are aware UTC datetimes;
    ``ttr`` is in seconds.
    """

    topic: str
    id: str
    cron: str | None
    every: timedelta | None
    tz: str
    next_run_at: datetime | None
    start_at: datetime | None
    end_at: datetime | None
    version: int
    body: bytes
    priority: int
    ttr: float
    max_attempts: int | None
    last_run_at: datetime | None = None
