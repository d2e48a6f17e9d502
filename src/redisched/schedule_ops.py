"""The calls behind recurring schedules (no I/O): create, read, delete, and the cron refill.

A schedule lives in its topic's ``schedules`` hash; its pending occurrence is an ordinary job.
``reserve.lua`` and ``pull.lua`` put the next occurrence in the step that leases the current
one. A cron schedule holds a short list of upcoming UTC times (:mod:`redisched.recurrence`);
when it runs low the scripts add the schedule to the topic's ``refill`` set, and the glue tops
it up after any ack, release, bury, pull or requeue that may have taken a time (:func:`refill`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from . import recurrence, validate
from .codes import ScheduleCode, UnscheduleCode
from .convert import stored_name, to_datetime
from .errors import InvalidArgument, TopicPartitioned, VersionConflict
from .models import Schedule

if TYPE_CHECKING:
    from .ops import Arg, Call, Operations

logger = logging.getLogger(__name__)

REFILL_BATCH = 10
"""How many schedules one refill round tops up (the rest wait for the next call)."""
_MAX_SCHEDULE_ID_BYTES = validate.MAX_ID_BYTES - len("@2000-01-01T00:00:00Z")


def _ms_to_datetime(ms: int) -> datetime | None:
    return None if ms <= 0 else to_datetime(ms)


def parse_schedule(topic: str, entry: Sequence[Any]) -> Schedule:
    """Read one entry of get_schedule.lua's reply."""
    (sid, version, cron, tz, every, start, end, next_ms, last_ms, priority, ttr, max_attempts,
     body, _, _) = entry  # fmt: skip
    return Schedule(
        topic=topic,
        id=stored_name(sid),
        cron=cron.decode() or None,
        every=timedelta(milliseconds=every) if every else None,
        tz=tz.decode(),
        next_run_at=_ms_to_datetime(next_ms),
        start_at=_ms_to_datetime(start),
        end_at=_ms_to_datetime(end),
        version=version,
        body=bytes(body),
        priority=priority,
        ttr=ttr / 1000,
        max_attempts=max_attempts or None,
        last_run_at=_ms_to_datetime(last_ms),
    )


END_AT_PAST = (
    "must be in the future and after the schedule's first run (by the Redis server's clock):"
    " the schedule would never run"
)
"""schedule.lua's ENDED status, as every glue words it."""


def _schedule_id(value: object) -> str:
    sid = validate.new_job_id(value)
    if len(sid.encode("utf-8")) > _MAX_SCHEDULE_ID_BYTES:
        raise InvalidArgument("id", f"must be at most {_MAX_SCHEDULE_ID_BYTES} bytes in UTF-8")
    return sid


def _wall_ms(ops: Operations) -> int:
    return round(time.time() * 1000) if ops.clock is None else ops.clock_ms()


def schedule(
    ops: Operations,
    topic: str,
    id: str,
    body: bytes | str,
    *,
    cron: object = None,
    every: object = None,
    tz: object = "UTC",
    start_at: object = None,
    end_at: object = None,
    ttr: object = None,
    priority: object = 0,
    max_attempts: object = None,
    if_version: object = None,
    create_only: object = False,
) -> Call[Schedule]:
    """Create or replace the schedule ``id`` of ``topic`` (see :meth:`Client.schedule`);
    ``create_only=True``: VersionConflict when it exists (schedule.lua's ``if_version`` 0)."""
    from .ops import Call

    keys = ops.keys(topic)
    sid = _schedule_id(id)
    data = validate.body(body, ops.max_body_size)
    if (cron is None) == (every is None):
        raise InvalidArgument("cron", "give exactly one of cron and every")
    zone = recurrence.time_zone(tz)
    start_ms = 0 if start_at is None else validate.epoch_ms(start_at, "start_at")
    end_ms = 0 if end_at is None else validate.epoch_ms(end_at, "end_at")
    if end_at is not None and end_ms == 0:  # schedule.lua reads 0 as no end: this one is past
        raise InvalidArgument("end_at", END_AT_PAST)
    if end_ms and end_ms <= start_ms:
        raise InvalidArgument("end_at", "must be after start_at")
    ttr_arg: Arg = "" if ttr is None else validate.ttr_ms(ttr)
    prio = validate.priority(priority)
    attempts = validate.optional_positive(max_attempts, "max_attempts")
    expected = validate.optional_version(if_version, "if_version")
    if not isinstance(create_only, bool):
        raise InvalidArgument("create_only", f"must be a bool, not {type(create_only).__name__}")
    if create_only:
        if expected is not None:
            raise InvalidArgument("create_only", "give if_version or create_only, not both")
        expected = 0  # the version of no schedule
    found: list[int] = []
    if every is not None:
        every_arg = recurrence.every_ms(every)
        anchor: Arg = recurrence.ceil_second(start_ms) if start_ms else ""
        expr = ""
    else:
        every_arg, anchor = 0, ""
        expr = recurrence.cron_expression(cron, zone)
        after = max(start_ms - 1, _wall_ms(ops) - 60_000)
        found = recurrence.cron_times(expr, zone, after, recurrence.UPCOMING, end_ms or None)
        if not found and not end_ms:
            when = " after start_at (before the year 10000)" if start_ms else ""
            raise InvalidArgument("cron", f"cron expression {expr!r} never fires{when}")

    def send(times: Sequence[int]) -> Call[Schedule]:
        write = ops._step(
            "schedule", topic, ops._now(), sid, "" if expected is None else expected, every_arg,
            anchor, start_ms, end_ms, ttr_arg, prio, "" if attempts is None else attempts,
            expr, zone.key, data, *times,
        )  # fmt: skip
        read = ops._step("get_schedule", topic, sid)
        return Call((write, read), parse, ops._register(keys.topic), then=then)

    def then(replies: list[Any]) -> Call[Schedule]:
        status, _, after_ms = replies[0]
        if status == ScheduleCode.TIMES_TOO_EARLY:  # its last run is further ahead than them
            times = recurrence.cron_times(expr, zone, after_ms, recurrence.UPCOMING, end_ms or None)
            return send(times)
        schedule = parse(replies)
        return Call((), lambda _: schedule)

    def parse(replies: list[Any]) -> Schedule:
        status, version, _ = replies[0]
        if status == ScheduleCode.VERSION_CONFLICT:
            raise VersionConflict(topic, sid, expected or 0, version, "schedule")
        if status == ScheduleCode.ENDED:
            raise InvalidArgument("end_at", END_AT_PAST)
        if status == ScheduleCode.PARTITIONED:
            raise TopicPartitioned(topic, version)
        return parse_schedule(topic, replies[1][0])

    return send(found)


def get_schedule(
    ops: Operations, topic: str, id: str, *, own: bool = False
) -> Call[Schedule | None]:
    """Read one schedule; None when there is none.

    Raises TopicPartitioned when there is no such schedule and ``topic`` is partitioned (a
    schedule made over HTTP or the CLI lives in its id's partition), unless ``own``: for the
    code that serves a partitioned topic's own name as one of its members.
    """
    from .ops import Call

    step = ops._step("get_schedule", topic, validate.stored_id(id))

    def parse(replies: list[Any]) -> Schedule | None:
        entry = replies[0][0]
        if type(entry) is int:  # no such schedule, and the topic is partitioned
            if own:
                return None
            raise TopicPartitioned(topic, entry)
        return None if not entry else parse_schedule(topic, entry)

    return Call((step,), parse)


def schedules(ops: Operations, topic: str, *, own: bool = False) -> Call[list[Schedule]]:
    """Every schedule of a topic, sorted by id.

    Raises TopicPartitioned when ``topic`` is partitioned (its schedules are spread over its
    partitions and itself), unless ``own``: the schedules its own name holds.
    """
    from .ops import Call, Step

    keys = ops.keys(topic)
    listing = Step(None, (), ("HKEYS", keys.name("schedules")))
    mark = Step(None, (), ("HGET", keys.name("meta"), "partitions"))

    def then(replies: list[Any]) -> Call[list[Schedule]]:
        ids, count = replies
        if count is not None and not own:
            raise TopicPartitioned(topic, int(count))
        if not ids:
            return Call((), lambda r: [])
        step = ops._step("get_schedule", topic, *sorted(ids))
        # an id unscheduled meanwhile: nil, or the partition count (an int)
        return Call((step,), lambda r: [parse_schedule(topic, e) for e in r[0] if _held(e)])

    return Call((listing, mark), lambda r: [], then=then)


def _held(entry: Any) -> bool:
    """True for an entry of get_schedule.lua's reply that is a schedule (not nil, and not a
    partitioned topic's count)."""
    return type(entry) is list


def unschedule(
    ops: Operations, topic: str, id: str, *, if_version: object = None, own: bool = False
) -> Call[bool]:
    """Delete a schedule and its waiting occurrence (which ends ``cancelled`` in its history,
    with a ``deleted`` event); True if it existed.

    Raises TopicPartitioned when there is no such schedule and ``topic`` is partitioned (as
    :func:`get_schedule`), unless ``own``: False then, for the code that routed the call.
    """
    from .ops import Call

    sid = validate.stored_id(id)
    expected = validate.optional_version(if_version, "if_version")
    step = ops._step("unschedule", topic, sid, "" if expected is None else expected, ops._now())

    def parse(replies: list[Any]) -> bool:
        status, version = replies[0]
        if status == UnscheduleCode.VERSION_CONFLICT:
            raise VersionConflict(topic, id, expected or 0, version, "schedule")
        if status == UnscheduleCode.PARTITIONED:
            if own:
                return False
            raise TopicPartitioned(topic, version)
        return bool(status == UnscheduleCode.DELETED)

    return Call((step,), parse)


def with_refill(ops: Operations, topic: str, call: Call[Any]) -> Call[Any]:
    """``call`` plus a read of the topic's refill set in the same round trip; the schedules
    found there get more cron times afterwards (best effort, see :func:`refill`)."""
    from .ops import Call, Step

    check = Step(None, (), ("ZRANGE", ops.keys(topic).name("refill"), 0, REFILL_BATCH - 1))
    inner = call.parse
    return Call(
        (*call.steps, check),
        lambda r: inner(r[:-1]),
        call.register_topic,
        call.durability,
        after=lambda r: refill(ops, topic, r[-1]),
    )


def refill(ops: Operations, topic: str, ids: Sequence[bytes]) -> Call[Any] | None:
    """The calls that top up the cron times of ``ids`` (None when there are none)."""
    from .ops import Call, Step

    if not ids:
        return None
    read = ops._step("get_schedule", topic, *ids)
    clock = Step(None, (), ("TIME",))

    def top_up(replies: list[Any]) -> Call[None]:
        entries, (seconds, micros) = replies
        now = _wall_ms(ops) if ops.clock is not None else int(seconds) * 1000 + int(micros) // 1000
        steps = []
        for sid, entry in zip(ids, entries, strict=True):
            times: list[int] = []
            version = 0
            if _held(entry):
                (_, version, cron, tz, _, _, end, next_ms, last_ms, *_, left, last_time) = entry
                if cron:
                    after = max(last_time, next_ms) if next_ms else max(now - 1, last_ms)
                    zone = recurrence.stored_zone(tz.decode())
                    times = recurrence.cron_times(
                        cron.decode(), zone, after, recurrence.UPCOMING - left, end or None
                    )
            steps.append(ops._step("refill", topic, ops._now(), sid, version, *times))
        logger.debug("refilled %d schedules of topic %r", len(steps), topic)
        return Call(tuple(steps), lambda r: None)

    return Call((read, clock), top_up)
