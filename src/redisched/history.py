"""Reading job history: the replies of history.lua and finished.lua, and the topic's feed.

The scripts that change a job append an event to its record and to the topic's feed (a Redis
Stream); the scripts that end a job write its finished record in the same call (DESIGN.md
section 9). This module reads them back into :class:`JobHistory` and :class:`JobEvent`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from . import cursors
from .convert import stored_name, text, to_datetime
from .errors import InvalidArgument
from .models import EventKind, HistoryPage, JobEvent, JobHistory, Outcome

_TAG = re.compile(r"[0-9a-f]{8}")
_CURSOR = re.compile(r"(([0-9]{1,20})-([0-9]{1,20}))(?::([0-9]{1,6}))?")  # fullmatch: no "\n"
_MAX_ID_PART = 2**64 - 1

CANCEL_SENT = "cancel sent"
"""How an event's detail ends when its script told the job's running holder to stop: a delete
(also delete_many, purge), an abort (its ``aborted`` event) or a replace (also reschedule) of a
reserved job, and an expired or timed-out reservation (docs/design.md, section 7
"Cancellation")."""


def cancel_sent(event: JobEvent) -> bool:
    """True when ``event`` ended or replaced a running attempt and sent its holder the cancel."""
    return event.detail is not None and event.detail.endswith(CANCEL_SENT)


topic_tag = cursors.topic_tag


def cursor(topic: str, entry_id: str, index: int) -> str:
    """The cursor of a feed event: its stream entry id, its index in the entry, the topic's tag."""
    return f"{entry_id}:{index}.{topic_tag(topic)}"


def parse_cursor(topic: str, value: object, argument: str = "after") -> tuple[str, int | None]:
    """The (entry id, index) of a cursor of ``topic``; InvalidArgument for anything else.

    A bare stream entry id (``1767225600000-0``, no index) means after that whole entry.
    """
    if not isinstance(value, str):
        raise InvalidArgument(argument, f"must be a cursor string, not {type(value).__name__}")
    position, dot, tag = value.partition(".")
    match = _CURSOR.fullmatch(position)
    if match is not None and dot and tag != topic_tag(topic):
        if _TAG.fullmatch(tag):
            raise InvalidArgument(argument, f"is a cursor of another topic, not of {topic!r}")
        match = None
    # a stream id's parts are unsigned 64-bit numbers; nothing comes after the largest id
    parts = (0, 0) if match is None else (int(match.group(2)), int(match.group(3)))
    if match is None or max(parts) > _MAX_ID_PART or min(parts) == _MAX_ID_PART:
        raise InvalidArgument(argument, "must be a cursor that a read of the events returned")
    index = match.group(4)
    return match.group(1), None if index is None else int(index)


def outcome(value: object, argument: str = "outcome") -> Outcome | None:
    """None, or an Outcome (or its name)."""
    if value is None:
        return None
    try:
        return Outcome(value if isinstance(value, str) else "")
    except ValueError:
        names = ", ".join(o.value for o in Outcome)
        raise InvalidArgument(argument, f"must be one of {names}, not {value!r}") from None


def parse_event(reply: Sequence[Any]) -> JobEvent:
    """One event of a history reply: ``[kind, at_ms, version, attempt, detail]``."""
    kind, at, version, attempt, detail = reply
    return JobEvent(to_datetime(at), EventKind(kind.decode()), version, attempt, text(detail))


def parse_history(topic: str, job_id: str, reply: Sequence[Any] | None) -> JobHistory | None:
    """Read the reply of history.lua."""
    if reply is None:
        return None
    code, finished_at, version, attempts, result, last_error, *events = reply
    return JobHistory(
        topic=topic,
        id=job_id,
        outcome=Outcome(code.decode()) if code else None,
        finished_at=None if finished_at < 0 else to_datetime(finished_at),
        version=version,
        attempts=attempts,
        result=None if result is None else bytes(result),
        last_error=text(last_error),
        events=[parse_event(e) for e in events],
    )


def parse_finished(topic: str, reply: Sequence[Any]) -> HistoryPage:
    """Read the reply of finished.lua: ``[after, [id, outcome, finished_at, ...], ...]``."""
    after, *records = reply
    jobs = []
    for record in records:
        job_id, *rest = record
        parsed = parse_history(topic, stored_name(bytes(job_id)), [*rest])
        assert parsed is not None
        jobs.append(parsed)
    after_part = None if after is None else [1, *after]
    return HistoryPage(jobs, cursors.from_reply(topic, "finished", after_part))


def parse_feed(topic: str, reply: Sequence[Any]) -> list[JobEvent]:
    """Read the reply of feed.lua: ``[entry_id, index, id, kind, at, version, attempt, detail]``."""
    events = []
    for entry_id, index, job_id, kind, at, version, attempt, detail in reply:
        events.append(
            JobEvent(
                at=to_datetime(at),
                kind=EventKind(bytes(kind).decode()),
                version=version,
                attempt=attempt,
                detail=text(detail) or None,
                id=stored_name(bytes(job_id)),
                cursor=cursor(topic, bytes(entry_id).decode(), index),
            )
        )
    return events
