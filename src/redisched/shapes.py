"""How jobs, topics, schedules and histories are shown as JSON, by the HTTP API and the CLI.

The msgspec types here are the HTTP API's responses (:mod:`redisched.http.schemas` documents
them in ``/openapi.json``) and what ``redisched ... --json`` prints, so a script can read
either. Bodies follow :mod:`redisched.json_body`; times encode as RFC 3339 in UTC with ``Z``.
No web framework is imported: the CLI uses this module too.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from .convert import shown
from .json_body import to_json
from .models import EventKind, Job, JobEvent, JobHistory, JobState, Outcome, Schedule, TopicStats
from .topic_config import TopicConfig

BODY_DOC = (
    'Any JSON value. Bytes that are not JSON travel as {"$base64": "<standard base64>"}; '
    "a body stored as the bytes of a JSON text reads back as that JSON value."
)


class JobOut(Struct, omit_defaults=True):
    """A job; ``token`` and ``reserved_until`` only on jobs handed to a consumer by reserve;
    ``pending_version`` only while a replacement put during the running attempt waits for it
    to end (the version the replacement will have: the job's ETag meanwhile)."""

    topic: str
    id: str
    body: Annotated[Any, Meta(description=BODY_DOC)]
    state: JobState
    run_at: datetime
    priority: int
    ttr: float
    attempts: int
    max_attempts: int | None
    version: int
    last_error: str | None
    token: str | UnsetType = UNSET
    reserved_until: datetime | UnsetType = UNSET
    pending_version: int | UnsetType = UNSET


class WebhookOut(Struct):
    """A topic's webhook; secrets are never shown, only how many there are, nor the URL's
    password (``***``)."""

    url: str
    timeout: float
    secret_count: int


class TopicConfigOut(Struct):
    """A topic's settings; null means the built-in default."""

    ttr: float | None
    max_attempts: int | None
    backoff: float | None
    backoff_max: float | None
    webhook: WebhookOut | None
    concurrency: int | None
    rate: float | None
    durable: bool = False
    history: bool = True
    keep_finished: int | None = None
    keep_finished_for: float | None = None
    dedup_window: float | None = None
    keep_dead: int | None = None
    keep_dead_for: float | None = None
    keep_events: int | None = None
    partitions: int | None = None


class Counts(Struct):
    """Jobs per state now."""

    scheduled: int
    ready: int
    reserved: int
    dead: int


class Totals(Struct):
    """Events since the topic was created."""

    put: int
    reserved: int
    acked: int
    released: int
    requeued: int
    dead: int
    pulled: int


class Finished(Struct):
    """Jobs that ended, per outcome, since the topic was created (kept or not in history)."""

    done: int
    cancelled: int
    dead: int
    pulled: int
    aborted: int


class TopicStatsOut(Struct):
    """A topic's counts per state, totals, finished jobs per outcome and pause flag."""

    topic: str
    paused: bool
    counts: Counts
    next_due: datetime | None
    totals: Totals
    finished: Finished


class TopicOut(TopicStatsOut):
    """A topic: counts per state, totals, pause flag and settings."""

    config: TopicConfigOut


class EventOut(Struct, omit_defaults=True):
    """One event: in a job's history, or (with ``id`` and ``cursor``) in a topic's feed."""

    at: datetime
    kind: EventKind
    version: int
    attempt: int
    detail: str | None = None
    id: str | UnsetType = UNSET
    cursor: str | UnsetType = UNSET


class HistoryOut(Struct):
    """A job's history; ``outcome`` and ``finished_at`` are null while the job lives."""

    topic: str
    id: str
    outcome: Outcome | None
    finished_at: datetime | None
    version: int
    attempts: int
    result: Annotated[Any, Meta(description=BODY_DOC)]
    last_error: str | None
    events: list[EventOut]


class ScheduleOut(Struct):
    """A recurring schedule; next_run_at is the occurrence now pending (null: none)."""

    topic: str
    id: str
    cron: str | None
    every: Annotated[int, Meta(ge=1, description="Whole seconds between occurrences.")] | None
    tz: str
    next_run_at: datetime | None
    last_run_at: datetime | None
    start_at: datetime | None
    end_at: datetime | None
    body: Annotated[Any, Meta(description=BODY_DOC)]
    priority: int
    ttr: float
    max_attempts: int | None
    version: int


_CONFIG_FIELDS = tuple(n for n in TopicConfigOut.__struct_fields__ if n != "webhook")
"""The settings shown as :class:`~redisched.topic_config.TopicConfig` holds them."""


def job_out(job: Job, *, handed_out: bool = False) -> JobOut:
    """A job as the API shows it; ``handed_out`` adds the token of a fresh reservation."""
    out = JobOut(
        topic=job.topic,
        id=job.id,
        body=to_json(job.body),
        state=job.state,
        run_at=job.run_at,
        priority=job.priority,
        ttr=job.ttr,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        version=job.version,
        last_error=job.last_error,
    )
    if job.pending_version is not None:
        out.pending_version = job.pending_version
    if handed_out and job.token is not None:
        out.token = job.token
        if job.reserved_until is not None:
            out.reserved_until = job.reserved_until
    return out


def config_out(config: TopicConfig) -> TopicConfigOut:
    """A topic's settings as the API shows them (webhook secrets counted, never shown, nor
    the URL's password)."""
    hook = config.webhook
    shown = None if hook is None else WebhookOut(hook.shown_url, hook.timeout, len(hook.secrets))
    return TopicConfigOut(
        webhook=shown,
        **{name: getattr(config, name) for name in _CONFIG_FIELDS},
    )


def _counts(stats: TopicStats) -> Counts:
    return Counts(stats.scheduled, stats.ready, stats.reserved, stats.dead)


def _totals(stats: TopicStats) -> Totals:
    return Totals(
        put=stats.total_put,
        reserved=stats.total_reserved,
        acked=stats.total_acked,
        released=stats.total_released,
        requeued=stats.total_requeued,
        dead=stats.total_dead,
        pulled=stats.total_pulled,
    )


def _finished(stats: TopicStats) -> Finished:
    return Finished(
        done=stats.finished_done,
        cancelled=stats.finished_cancelled,
        dead=stats.finished_dead,
        pulled=stats.finished_pulled,
        aborted=stats.finished_aborted,
    )


def stats_out(stats: TopicStats) -> TopicStatsOut:
    """A topic's counts and totals as the API shows them (without its settings)."""
    return TopicStatsOut(
        stats.topic, stats.paused, _counts(stats), stats.next_due, _totals(stats),
        _finished(stats),
    )  # fmt: skip


def topic_out(stats: TopicStats, config: TopicConfig) -> TopicOut:
    """A topic's counts, totals and settings as the API shows them."""
    return TopicOut(
        stats.topic, stats.paused, _counts(stats), stats.next_due, _totals(stats),
        _finished(stats), config_out(config),
    )  # fmt: skip


def event_out(event: JobEvent) -> EventOut:
    """An event as the API shows it (``detail``, ``id`` and ``cursor`` only when set)."""
    out = EventOut(event.at, event.kind, event.version, event.attempt, event.detail)
    if event.id is not None:
        out.id = event.id
    if event.cursor is not None:
        out.cursor = event.cursor
    return out


def history_out(history: JobHistory) -> HistoryOut:
    """A job's history as the API shows it (the result follows the body convention)."""
    return HistoryOut(
        topic=history.topic,
        id=history.id,
        outcome=history.outcome,
        finished_at=history.finished_at,
        version=history.version,
        attempts=history.attempts,
        result=None if history.result is None else to_json(history.result),
        last_error=history.last_error,
        events=[event_out(e) for e in history.events],
    )


def schedule_out(schedule: Schedule) -> ScheduleOut:
    """A schedule as the API shows it: the body follows the body convention, ``every`` is
    whole seconds (schedule.lua refuses any other interval)."""
    return ScheduleOut(
        topic=schedule.topic,
        id=schedule.id,
        cron=schedule.cron,
        every=None if schedule.every is None else schedule.every // timedelta(seconds=1),
        tz=schedule.tz,
        next_run_at=schedule.next_run_at,
        last_run_at=schedule.last_run_at,
        start_at=schedule.start_at,
        end_at=schedule.end_at,
        body=to_json(schedule.body),
        priority=schedule.priority,
        ttr=schedule.ttr,
        max_attempts=schedule.max_attempts,
        version=schedule.version,
    )


def encode(encoder: msgspec.json.Encoder, value: Any) -> bytes:
    """``value`` as JSON; a str that is not Unicode (the id of a job a raw script call
    stored with bytes that are not UTF-8: :func:`redisched.convert.stored_name`), which
    msgspec refuses, is written as :func:`redisched.convert.shown` shows it (``\\xNN``)."""
    try:
        return encoder.encode(value)
    except UnicodeEncodeError:  # the rare case pays for the walk
        return encoder.encode(readable(value))


def readable(value: Any) -> Any:
    """``value`` with every str in it (in structs, dicts, lists and tuples) as
    :func:`redisched.convert.shown` shows it."""
    if isinstance(value, str):
        return shown(value)
    if isinstance(value, Struct):
        fields = {f: readable(getattr(value, f)) for f in value.__struct_fields__}
        return msgspec.structs.replace(value, **fields)
    if isinstance(value, dict):
        return {readable(k): readable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [readable(v) for v in value]
    return value
