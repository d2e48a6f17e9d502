"""How job bodies (bytes) travel as JSON, and how jobs and topics are shown.

A job body is bytes in Redis and any JSON value over HTTP:

* PUT stores a JSON body as its compact JSON encoding (``{"a": 1}`` -> ``b'{"a":1}'``).
* A body whose bytes are a JSON text (anything put over HTTP, and any JSON put from Python)
  reads back as that JSON value, byte for byte as stored.
* Any other bytes (not UTF-8, not JSON, or empty) read back as ``{"$base64": "<base64>"}``
  (standard alphabet, padded). PUT accepts the same marker - an object whose only key is
  ``"$base64"`` - and stores the decoded bytes, so bytes round-trip both ways.
* A stored JSON text that is itself such a marker object reads back base64-wrapped, so that
  a client decoding the marker gets the stored bytes exactly.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import msgspec

from ..errors import InvalidArgument
from ..models import Job, JobState, TopicStats
from ..topic_config import TopicConfig
from . import schemas

MARKER = "$base64"


def _is_marker(value: Any) -> bool:
    return type(value) is dict and len(value) == 1 and MARKER in value


def to_stored(value: Any, argument: str = "body") -> bytes:
    """The bytes to store for a JSON body value (decoding a ``$base64`` marker)."""
    if _is_marker(value):
        text = value[MARKER]
        if not isinstance(text, str):
            raise InvalidArgument(f"{argument}.{MARKER}", "must be a base64 string")
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidArgument(f"{argument}.{MARKER}", "is not valid base64") from None
    return msgspec.json.encode(value)


def to_json(data: bytes) -> msgspec.Raw:
    """The JSON form of stored bytes: the JSON text itself, else a ``$base64`` marker."""
    try:
        value = msgspec.json.decode(data)
    except (msgspec.DecodeError, ValueError):
        return _wrapped(data)
    if _is_marker(value):
        return _wrapped(data)
    return msgspec.Raw(data)


def _wrapped(data: bytes) -> msgspec.Raw:
    return msgspec.Raw(msgspec.json.encode({MARKER: base64.b64encode(data).decode("ascii")}))


def job_out(job: Job, *, handed_out: bool = False) -> schemas.JobOut:
    """A job as the API shows it; ``handed_out`` adds the token of a fresh reservation."""
    out = schemas.JobOut(
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
    if handed_out and job.token is not None:
        out.token = job.token
        if job.reserved_until is not None:
            out.reserved_until = job.reserved_until
    return out


def topic_out(stats: TopicStats, config: TopicConfig) -> schemas.TopicOut:
    """A topic's counts, totals and settings as the API shows them."""
    hook = config.webhook
    return schemas.TopicOut(
        topic=stats.topic,
        paused=stats.paused,
        counts=schemas.Counts(stats.scheduled, stats.ready, stats.reserved, stats.dead),
        next_due=stats.next_due,
        totals=schemas.Totals(
            put=stats.total_put,
            reserved=stats.total_reserved,
            acked=stats.total_acked,
            released=stats.total_released,
            requeued=stats.total_requeued,
            dead=stats.total_dead,
            pulled=stats.total_pulled,
        ),
        config=schemas.TopicConfigOut(
            ttr=config.ttr,
            max_attempts=config.max_attempts,
            backoff=config.backoff,
            backoff_max=config.backoff_max,
            webhook=None
            if hook is None
            else schemas.WebhookOut(hook.url, hook.timeout, len(hook.secrets)),
            concurrency=config.concurrency,
            rate=config.rate,
        ),
    )


STATE_NAMES = tuple(s.value for s in JobState)
