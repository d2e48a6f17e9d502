"""Reading job history: the replies of history.lua and finished.lua, and the topic's feed.

The scripts that change a job append an event to its record and to the topic's feed (a Redis
Stream); the scripts that end a job write its finished record in the same call (DESIGN.md
section 9). This module reads them back into :class:`JobHistory` and :class:`JobEvent`.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from .errors import InvalidArgument
from .models import EventKind, HistoryPage, JobEvent, JobHistory, Outcome

_ENTRY_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$")


def _to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _text(value: bytes | None) -> str | None:
    return None if value is None else bytes(value).decode("utf-8", "replace")


def topic_tag(topic: str) -> str:
    """A short tag of the topic carried in each cursor, so a cursor of another topic is caught."""
    return format(zlib.crc32(topic.encode("utf-8")), "08x")


def cursor(topic: str, entry_id: str) -> str:
    """The cursor of a feed entry: its stream entry id and the topic's tag."""
    return f"{entry_id}.{topic_tag(topic)}"


def entry_id(topic: str, value: object, argument: str = "after") -> str:
    """The stream entry id inside a cursor of ``topic``; InvalidArgument for anything else.

    A bare entry id (``1767225600000-0``) is accepted too, for SSE clients and other languages.
    """
    if not isinstance(value, str):
        raise InvalidArgument(argument, f"must be a cursor string, not {type(value).__name__}")
    stream_id, dot, tag = value.partition(".")
    if dot and tag != topic_tag(topic):
        raise InvalidArgument(argument, f"is a cursor of another topic, not of {topic!r}")
    if not _ENTRY_ID.match(stream_id):
        raise InvalidArgument(argument, "must be a cursor returned by events()")
    return stream_id


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
    return JobEvent(_to_datetime(at), EventKind(kind.decode()), version, attempt, _text(detail))


def parse_history(topic: str, job_id: str, reply: Sequence[Any] | None) -> JobHistory | None:
    """Read the reply of history.lua."""
    if reply is None:
        return None
    code, finished_at, version, attempts, result, last_error, *events = reply
    return JobHistory(
        topic=topic,
        id=job_id,
        outcome=Outcome(code.decode()) if code else None,
        finished_at=None if finished_at < 0 else _to_datetime(finished_at),
        version=version,
        attempts=attempts,
        result=None if result is None else bytes(result),
        last_error=_text(last_error),
        events=[parse_event(e) for e in events],
    )


def parse_finished(topic: str, reply: Sequence[Any]) -> HistoryPage:
    """Read the reply of finished.lua: ``[next_offset, [id, outcome, finished_at, ...], ...]``."""
    next_offset, *records = reply
    jobs = []
    for record in records:
        job_id, *rest = record
        parsed = parse_history(topic, bytes(job_id).decode("utf-8"), [*rest])
        assert parsed is not None
        jobs.append(parsed)
    return HistoryPage(jobs, str(next_offset) if next_offset else None)


def parse_feed(topic: str, entries: Sequence[Any]) -> list[JobEvent]:
    """Read an XRANGE reply of the topic's feed (fields ``j k t v a`` and maybe ``d``)."""
    events = []
    for raw_id, flat in entries:
        if isinstance(flat, dict):  # redis-py's XRANGE callback makes a dict of the fields
            fields = {bytes(k): v for k, v in flat.items()}
        else:
            fields = {bytes(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}
        stream_id = bytes(raw_id).decode()
        events.append(
            JobEvent(
                at=_to_datetime(int(fields[b"t"])),
                kind=EventKind(bytes(fields[b"k"]).decode()),
                version=int(fields[b"v"]),
                attempt=int(fields[b"a"]),
                detail=_text(fields.get(b"d")),
                id=bytes(fields[b"j"]).decode("utf-8", "replace"),
                cursor=cursor(topic, stream_id),
            )
        )
    return events
