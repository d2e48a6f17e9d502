"""The request and response types of the HTTP API (msgspec), shared by validation and OpenAPI.

Requests are decoded straight into these types, so a wrong type, an unknown field or an
out-of-range number is rejected with the path of the field at fault; ``/openapi.json`` is
generated from the same classes (``msgspec.json.schema_components``). How jobs, topics,
schedules and histories are shown (:class:`JobOut`, :class:`TopicOut`, :class:`ScheduleOut`,
:class:`HistoryOut`, :class:`EventOut`) lives in :mod:`redisched.shapes`, which the CLI
shares.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from msgspec import UNSET, Meta, Struct, UnsetType

from .. import validate
from ..models import JobState
from ..recurrence import MAX_CRON_LENGTH
from ..shapes import BODY_DOC
from ..shapes import EventOut as EventOut
from ..shapes import HistoryOut as HistoryOut
from ..shapes import JobOut as JobOut
from ..shapes import ScheduleOut as ScheduleOut
from ..shapes import TopicOut as TopicOut
from ..topic_config import MAX_PARTITIONS

_YEAR = 365 * 86_400
Delay = Annotated[
    float, Meta(ge=0, le=validate.MAX_DELAY_MS / 1000, description="Seconds from now.")
]
Ttr = Annotated[
    float,
    Meta(ge=0.001, le=validate.MAX_TTR_MS / 1000, description="Seconds a reservation lasts."),
]
Priority = Annotated[
    int, Meta(ge=-(2**31), le=2**31 - 1, description="Lower runs first among due jobs.")
]
Attempts = Annotated[int, Meta(ge=1, le=2**31 - 1, description="Reservations before dead.")]
EpochSeconds = Annotated[float, Meta(ge=0, le=validate.MAX_EPOCH_MS / 1000)]
RunAt = Annotated[datetime, Meta(tz=True, description="RFC 3339 with an offset.")]
JobId = Annotated[str, Meta(min_length=1, max_length=validate.MAX_ID_BYTES)]
Token = Annotated[str, Meta(min_length=1, max_length=256)]
Reason = Annotated[str, Meta(max_length=validate.MAX_ERROR_CHARS)]
Url = Annotated[str, Meta(min_length=1, max_length=2048)]
Secret = Annotated[str, Meta(min_length=8, max_length=512)]

Keep = Annotated[int, Meta(ge=0, le=10_000_000, description="How many to keep.")]
KeepFor = Annotated[float, Meta(ge=0, le=3650 * 86_400, description="Seconds.")]
Partitions = Annotated[
    int,
    Meta(ge=1, le=MAX_PARTITIONS, description="Partitions the topic is spread over; set once, "
         "while the topic holds no job, and never changed (ids would move)."),
]  # fmt: skip


class PutJob(Struct, forbid_unknown_fields=True):
    """PUT /v1/topics/{topic}/jobs/{id}: the job to store (replacing any with that id)."""

    body: Annotated[Any, Meta(description=BODY_DOC)]
    delay: Delay | None = None
    run_at: RunAt | EpochSeconds | None = None
    ttr: Ttr | None = None
    priority: Priority = 0
    max_attempts: Attempts | None = None


class Written(Struct):
    """The short answer to a put sent with ``Prefer: return=minimal`` (no read-back)."""

    topic: str
    id: str
    version: int
    status: Annotated[str, Meta(description="created, replaced or pending")]


class Reserve(Struct, forbid_unknown_fields=True):
    """POST /v1/topics/{topic}/reserve: lease up to ``count`` jobs, waiting up to ``wait`` s."""

    count: Annotated[int, Meta(ge=1, le=validate.MAX_COUNT)] = 1
    ttr: Ttr | None = None
    wait: Annotated[float, Meta(ge=0, le=60, description="Long-poll seconds.")] = 0.0


class Jobs(Struct):
    """Jobs handed out by reserve."""

    jobs: list[JobOut]


class JobPageOut(Struct):
    """One page of a job listing; pass ``cursor`` back for the next (null at the end)."""

    jobs: list[JobOut]
    cursor: str | None


class Ack(Struct, forbid_unknown_fields=True):
    """POST .../ack: finish a reserved job; ``result`` (any JSON value) is kept in its history."""

    token: Token
    result: Annotated[Any, Meta(description=BODY_DOC)] | UnsetType = UNSET


class Release(Struct, forbid_unknown_fields=True):
    """POST .../release: give a reserved job back, due after ``delay`` seconds."""

    token: Token
    delay: Delay = 0.0
    reason: Reason | None = None


class Touch(Struct, forbid_unknown_fields=True):
    """POST .../touch: move a reservation's deadline to now + ``ttr`` (default: the job's
    ttr); a ttr shorter than the time left shortens it."""

    token: Token
    ttr: Ttr | None = None


class Bury(Struct, forbid_unknown_fields=True):
    """POST .../bury: move a reserved job to dead, keeping ``reason``."""

    token: Token
    reason: Reason | None = None


class Kick(Struct, forbid_unknown_fields=True):
    """POST .../kick: move a dead job back to ready (the body may be empty)."""


class Abort(Struct, forbid_unknown_fields=True):
    """POST .../abort: stop a job, cancelling its handler if it runs (the body may be empty);
    ``reason`` is kept in its history's ``aborted`` event."""

    reason: Reason | None = None


class Released(Struct):
    """The state a released job went to."""

    state: JobState


class Touched(Struct):
    """The new reservation deadline."""

    reserved_until: datetime


class Kicked(Struct):
    """How many jobs went from dead to ready."""

    kicked: int


class WebhookIn(Struct, forbid_unknown_fields=True):
    """Where a topic's due jobs are POSTed; the first secret signs. Without ``secrets``, a
    topic that has a webhook keeps its secrets (they are never shown, so they can't be sent
    back); ``[]`` removes them."""

    url: Url
    secrets: Annotated[list[Secret], Meta(max_length=2)] | UnsetType = UNSET
    timeout: Annotated[float, Meta(gt=0, le=300)] = 10.0


class TopicPatch(Struct, forbid_unknown_fields=True):
    """PATCH /v1/topics/{topic}: change settings; ``null`` restores a default."""

    webhook: WebhookIn | UnsetType | None = UNSET
    paused: bool | UnsetType = UNSET
    ttr: Ttr | UnsetType | None = UNSET
    max_attempts: Attempts | UnsetType | None = UNSET
    backoff: Annotated[float, Meta(ge=0, le=86_400)] | UnsetType | None = UNSET
    backoff_max: Annotated[float, Meta(ge=0, le=86_400)] | UnsetType | None = UNSET
    concurrency: Annotated[int, Meta(ge=1, le=10_000)] | UnsetType | None = UNSET
    rate: Annotated[float, Meta(ge=0.001, le=1_000_000)] | UnsetType | None = UNSET
    durable: bool | UnsetType | None = UNSET
    history: bool | UnsetType | None = UNSET
    keep_finished: Keep | UnsetType | None = UNSET
    keep_finished_for: KeepFor | UnsetType | None = UNSET
    dedup_window: KeepFor | UnsetType | None = UNSET
    keep_dead: Keep | UnsetType | None = UNSET
    keep_dead_for: KeepFor | UnsetType | None = UNSET
    keep_events: Keep | UnsetType | None = UNSET
    partitions: Partitions | UnsetType | None = UNSET


class Topics(Struct):
    """Every topic that has had a put, sorted."""

    topics: list[str]


class Schedule(Struct, forbid_unknown_fields=True):
    """POST /schedule/{topic}: the original project's call; creates or replaces job ``id``."""

    id: JobId
    contents: Annotated[Any, Meta(description=BODY_DOC)]
    delay: Delay = 0.0


class Cancel(Struct, forbid_unknown_fields=True):
    """POST /cancel/{topic}: delete job ``id``."""

    id: JobId


class Cancelled(Struct):
    """The outcome of a cancel."""

    id: str
    cancelled: bool


class Health(Struct):
    """The service answers and Redis is reachable."""

    status: str
    redis: str


class ErrorDetail(Struct):
    """What went wrong: a machine-readable code, a message, and the field at fault."""

    code: str
    message: str
    field: str | None


class Error(Struct):
    """The body of every 4xx and 5xx answer."""

    error: ErrorDetail


class IdBytes(Struct, forbid_unknown_fields=True, rename={"data": "$base64"}):
    """An id given as its bytes, ``{"$base64": "..."}``: one a raw script call stored that is
    not UTF-8, which a JSON string cannot hold (listings show it as ``\\xNN``)."""

    data: Annotated[str, Meta(min_length=1, max_length=4 * validate.MAX_ID_BYTES // 3 + 4)]


class BulkIn(Struct, forbid_unknown_fields=True):
    """A bulk action on jobs named by id; with ``state``, only those still in that state."""

    ids: Annotated[list[JobId | IdBytes], Meta(min_length=1, max_length=validate.MAX_BULK_IDS)]
    state: JobState | None = None


class BulkOut(Struct):
    """What a bulk action did: ``done`` of the ``requested`` jobs (the others had moved)."""

    action: str
    requested: int
    done: int


class PurgeIn(Struct, forbid_unknown_fields=True):
    """POST /v1/topics/{topic}/purge: delete every job in one state (not reserved)."""

    state: JobState


class Purged(Struct):
    """How many jobs a purge or a topic deletion removed."""

    topic: str
    deleted: int
    state: JobState | None = None


class RescheduleIn(Struct, forbid_unknown_fields=True):
    """POST .../reschedule: a new due time (and priority), keeping the body. Neither: now."""

    delay: Delay | None = None
    run_at: RunAt | EpochSeconds | None = None
    priority: Priority | None = None


class KickAll(Struct, forbid_unknown_fields=True):
    """POST /v1/topics/{topic}/kick: move up to ``limit`` dead jobs back to ready, oldest first."""

    limit: Annotated[int, Meta(ge=1, le=10_000)] = 100


class EventsOut(Struct):
    """A page of a topic's feed, oldest first; ``cursor`` is the last event's (pass it as
    ``after``), or the ``after`` given when no event is newer."""

    events: list[EventOut]
    cursor: str | None


class FinishedPageOut(Struct):
    """One page of a topic's finished jobs, most recent first (events left out)."""

    jobs: list[HistoryOut]
    cursor: str | None


Cron = Annotated[str, Meta(max_length=MAX_CRON_LENGTH, description="5-field crontab, read in tz.")]
Every = Annotated[float, Meta(description="Whole seconds between occurrences, >= 1.")]


class PutSchedule(Struct, forbid_unknown_fields=True):
    """PUT /v1/topics/{topic}/schedules/{id}: a recurring schedule (exactly one of cron, every).

    Each occurrence is a job ``<id>@<UTC time>`` with this body and options.
    """

    body: Annotated[Any, Meta(description=BODY_DOC)]
    cron: Cron | None = None
    every: Every | None = None
    tz: Annotated[str, Meta(max_length=64, description="IANA time zone of cron.")] = "UTC"
    start_at: RunAt | EpochSeconds | None = None
    end_at: RunAt | EpochSeconds | None = None
    ttr: Ttr | None = None
    priority: Priority = 0
    max_attempts: Attempts | None = None


class ScheduleList(Struct):
    """A topic's schedules, by id."""

    schedules: list[ScheduleOut]
