"""Bridge messages: decode and validate one JSON put/delete command (no I/O).

A message is a JSON object::

    {"op": "put", "topic": "emails", "id": "welcome-42", "body": {"to": "a@b.c"},
     "delay": 3600, "ttr": 30, "priority": 0, "max_attempts": 5, "replace": false}

``op`` is ``put`` (the default) or ``delete``; ``id`` is required. The AMQP ``message_id``
never stands in for it: aio-pika and other clients invent a random message_id when the
publisher sets none, which would turn a message without an id into a job with a random id
instead of a dead letter. ``body`` follows the HTTP API's rule (``redisched.json_body``): any
JSON value, stored as its compact JSON encoding; an object whose only key is ``"$base64"``
stores the bytes it encodes; absent, the body is empty. ``delay`` (seconds) or ``run_at``
(epoch seconds or an RFC 3339 time with offset) set the due time. Anything else is an error,
a key given twice in one object (the message's or the body's) included.

Every check is the core's own (``redisched.validate``, ``Operations.put``), so a message the
bridge accepts is one ``put`` accepts, and a rejected one names its field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec

from .. import validate
from ..errors import InvalidArgument
from ..json_body import MAX_DEPTH, to_stored, too_deep
from ..json_keys import repeated_key
from ..keys import validate_topic
from ..ops import Operations

__all__ = ["Delete", "Put", "PutOptions", "parse"]

ERROR_FIELD_PREFIX = "$."


class _Message(msgspec.Struct, forbid_unknown_fields=True):
    topic: str
    op: Literal["put", "delete"] = "put"
    id: str | None = None
    body: Any = msgspec.UNSET
    delay: float | None = None
    run_at: float | datetime | None = None
    ttr: float | None = None
    priority: int = 0
    max_attempts: int | None = None
    replace: bool = False


_DECODER = msgspec.json.Decoder(_Message)
_PUT_ONLY = ("body", "delay", "run_at", "ttr", "max_attempts")


@dataclass(frozen=True, slots=True)
class PutOptions:
    """The options of a put; puts with equal options can share one ``put_many``."""

    delay: float | None = None
    run_at: float | datetime | None = None
    ttr: float | None = None
    priority: int = 0
    max_attempts: int | None = None
    replace: bool = False


@dataclass(frozen=True, slots=True)
class Put:
    """A validated put: create the job (or replace it when ``options.replace``)."""

    topic: str
    id: str
    body: bytes
    options: PutOptions


@dataclass(frozen=True, slots=True)
class Delete:
    """A validated delete of one job by id."""

    topic: str
    id: str


def _validation_error(exc: msgspec.ValidationError) -> InvalidArgument:
    # msgspec says "Expected `int`, got `str` - at `$.priority`"; name the field first.
    text = str(exc)
    message, _, path = text.rpartition(" - at `")
    if message and path.startswith(ERROR_FIELD_PREFIX):
        return InvalidArgument(path[len(ERROR_FIELD_PREFIX) : -1], message)
    for marker in ("missing required field `", "unknown field `"):
        if marker in text:
            field = text.split(marker, 1)[1].split("`", 1)[0]
            return InvalidArgument(field, text)
    return InvalidArgument("message", text)


def _body(value: Any, max_size: int) -> bytes:
    """The bytes to store, by the rule of :mod:`redisched.json_body` (absent: empty)."""
    return b"" if value is msgspec.UNSET else validate.body(to_stored(value), max_size)


def parse(data: bytes, ops: Operations) -> Put | Delete:
    """Decode and validate one message.

    Args:
        data: the message body (JSON).
        ops: the client's operations, whose checks (and body size limit) apply.

    Returns:
        A :class:`Put` or :class:`Delete` that the core will accept.

    Raises:
        InvalidArgument: naming the offending field (``message`` for the message as a whole).
    """
    # JSON escapes can make a body up to 6 times longer than its bytes; past that, stop
    # before decoding a huge message.
    if len(data) > 6 * ops.max_body_size + 65_536:
        raise InvalidArgument("message", f"is {len(data)} bytes, far over the body size limit")
    if too_deep(data, MAX_DEPTH + 1):  # the message object is one level around the body
        raise InvalidArgument("body", f"is nested deeper than {MAX_DEPTH} levels")
    try:
        message = _DECODER.decode(data)
    except msgspec.ValidationError as exc:
        raise _validation_error(exc) from None
    except (msgspec.DecodeError, RecursionError) as exc:
        raise InvalidArgument("message", f"is not valid JSON: {exc}") from None
    repeated = repeated_key(data, "body")  # msgspec keeps the last: which id was meant?
    if repeated is not None:
        key, field = repeated
        raise InvalidArgument(field or "message", f"the JSON object has the key {key!r} twice")
    topic = validate_topic(message.topic)
    if message.id is None:
        raise InvalidArgument("id", "is missing (the AMQP message_id does not stand in for it)")
    job_id = validate.job_id(message.id)
    if message.op == "delete":
        for name in _PUT_ONLY:
            if getattr(message, name) not in (None, msgspec.UNSET):
                raise InvalidArgument(name, "is not allowed with op 'delete'")
        if message.priority != 0 or message.replace:
            raise InvalidArgument(
                "priority" if message.priority else "replace", "is not allowed with op 'delete'"
            )
        return Delete(topic, job_id)
    body = _body(message.body, ops.max_body_size)
    options = PutOptions(
        delay=message.delay,
        run_at=message.run_at,
        ttr=message.ttr,
        priority=message.priority,
        max_attempts=message.max_attempts,
        replace=message.replace,
    )
    # Build (and drop) the call: the core's own checks of every option, nothing sent.
    ops.put(
        topic, job_id, body, delay=options.delay, run_at=options.run_at, ttr=options.ttr,
        priority=options.priority, max_attempts=options.max_attempts, replace=options.replace,
    )  # fmt: skip
    return Put(topic, job_id, body, options)
