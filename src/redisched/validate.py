"""Checks on caller input: each returns the normalised value or raises InvalidArgument.

Every public entry point runs its arguments through these before anything reaches Redis,
so bad input never changes a stored job.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from typing import Any

from .errors import InvalidArgument
from .keys import validate_topic
from .models import JobState

MAX_ID_BYTES = 1024
MAX_DELAY_MS = 100 * 365 * 86_400_000  # a century keeps every time well inside a double
MAX_TTR_MS = 365 * 86_400_000
MAX_EPOCH_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z
PRIORITY_RANGE = (-(2**31), 2**31 - 1)
MAX_COUNT = 1000
MAX_ERROR_CHARS = 65_536


_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"-?[0-9]{1,18}")


def number_text(text: str, argument: str) -> float:
    """A number written as in JSON (ASCII digits, no ``_``, no spaces, no nan/inf), as a float.

    ``float()`` alone also takes ``1_0``, Arabic-Indic digits, spaces and ``nan``.
    """
    if not _NUMBER.fullmatch(text):
        raise InvalidArgument(argument, f"must be a number such as 1.5, not {text!r}")
    value = float(text)
    if not math.isfinite(value):
        raise InvalidArgument(argument, "must be a finite number")
    return value


def integer_text(text: str, argument: str) -> int:
    """A whole number in ASCII digits (optional ``-``, at most 18 digits, nothing else).

    ``int()`` alone also takes ``1_0``, ``+1``, spaces and other scripts' digits.
    """
    if not _INTEGER.fullmatch(text):
        raise InvalidArgument(argument, f"must be a whole number in digits 0-9, not {text!r}")
    return int(text)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def job_id(value: object, argument: str = "id") -> str:
    """A job id: a non-empty string of at most 1024 UTF-8 bytes."""
    if not isinstance(value, str):
        raise InvalidArgument(argument, f"must be a string, not {type(value).__name__}")
    if not value:
        raise InvalidArgument(argument, "must not be empty")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidArgument(argument, "must be valid Unicode (no lone surrogates)") from exc
    if size > MAX_ID_BYTES:
        raise InvalidArgument(argument, f"must be at most {MAX_ID_BYTES} bytes in UTF-8")
    return value


def stored_id(value: object, argument: str = "id") -> str | bytes:
    """The id of a stored job as sent to Redis: :func:`job_id`'s str, or, for an id read back
    from a job whose id is not UTF-8 (a raw script call stored it; the parsers decode it with
    ``surrogateescape``: :func:`redisched.convert.stored_name`), its original bytes.

    Only calls on jobs that exist take it (get, delete, history, ack...); a new job's id must
    be valid Unicode.
    """
    try:
        return job_id(value, argument)
    except InvalidArgument:
        data = _escaped_bytes(value)
        if data is None:
            raise
        if len(data) > MAX_ID_BYTES:
            raise InvalidArgument(argument, f"must be at most {MAX_ID_BYTES} bytes") from None
        return data


def _escaped_bytes(value: object) -> bytes | None:
    """The bytes of a str that has no UTF-8 only because it holds bytes decoded with
    ``surrogateescape``; None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        try:
            data = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return None
        try:  # escapes that spell UTF-8 are no stored id's: an alias of another id's text
            data.decode("utf-8")
        except UnicodeDecodeError:
            return data
    return None


def stored_text(value: object, argument: str = "id") -> str:
    """:func:`stored_id`'s check, the id kept as text (the caller sends :func:`stored_id`)."""
    stored_id(value, argument)
    return value  # type: ignore[return-value]  # stored_id let only a str through


DOT_NAMES = frozenset({".", ".."})
DOT_NAME_PROBLEM = "must not be '.' or '..' (a URL path would resolve it to its parent)"


def new_name(value: str, argument: str) -> str:
    """``value`` (an already checked id or topic), unless it is ``.`` or ``..``.

    Browsers and curl resolve such a path segment to its parent (``DELETE …/jobs/..`` is
    ``DELETE /v1/topics/T``), so no new job, schedule or topic takes one. Reading and deleting
    an existing one stay possible: data stored by an older version must stay removable.
    """
    if value in DOT_NAMES:
        raise InvalidArgument(argument, DOT_NAME_PROBLEM)
    return value


def new_job_id(value: object, argument: str = "id") -> str:
    """The id of a job or schedule to create: :func:`job_id`, and not ``.`` or ``..``."""
    return new_name(job_id(value, argument), argument)


MAX_BULK_IDS = 10_000


def job_ids(value: object, argument: str = "ids") -> list[str]:
    """A list of 1 to 10,000 ids of stored jobs (:func:`stored_id`), without repeats (order
    kept)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise InvalidArgument(argument, "must be a list of job ids")
    if not 1 <= len(value) <= MAX_BULK_IDS:
        raise InvalidArgument(argument, f"must hold 1 to {MAX_BULK_IDS} ids")
    checked = [stored_text(v, f"{argument}[{i}]") for i, v in enumerate(value)]
    return list(dict.fromkeys(checked))


def id_prefix(value: object, argument: str = "prefix") -> str:
    """An id prefix to filter a listing: a non-empty string of at most 1024 UTF-8 bytes."""
    return job_id(value, argument)


def body(value: object, max_size: int, argument: str = "body") -> bytes:
    """A job body: bytes as they are, or a str encoded as UTF-8; at most ``max_size`` bytes."""
    if isinstance(value, str):
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidArgument(argument, "must be valid Unicode (no lone surrogates)") from exc
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    else:
        raise InvalidArgument(argument, f"must be bytes or str, not {type(value).__name__}")
    if len(data) > max_size:
        raise InvalidArgument(argument, f"is {len(data)} bytes; the limit is {max_size}")
    return data


def to_float(value: int | float) -> float:
    """``value`` as a float; an int too large for a double as the infinity of its sign (its
    range check then refuses it: ``float(10**400)`` raises OverflowError)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def duration_ms(
    value: object, argument: str, *, minimum_ms: int = 0, maximum_ms: int = MAX_DELAY_MS
) -> int:
    """Seconds (int or float) or a timedelta, as whole milliseconds within the bounds."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif _is_number(value):
        seconds = to_float(value)  # type: ignore[arg-type]
    else:
        raise InvalidArgument(
            argument, f"must be seconds (int or float) or a timedelta, not {type(value).__name__}"
        )
    if isinstance(value, int) and math.isinf(seconds):
        seconds = math.copysign(MAX_DELAY_MS, seconds)  # out of every range: said as such
    if not math.isfinite(seconds * 1000):  # a huge float overflows as milliseconds
        raise InvalidArgument(argument, "must be a finite number of seconds")
    ms = round(seconds * 1000)
    if ms < minimum_ms:
        raise InvalidArgument(argument, f"must be at least {_seconds(minimum_ms)}")
    if ms > maximum_ms:
        raise InvalidArgument(argument, f"must be at most {_seconds(maximum_ms)}")
    return ms


def _seconds(ms: int) -> str:
    """``ms`` as seconds in words: "1 second", "0.5 seconds"."""
    return f"{ms / 1000:g} second" + ("" if ms == 1000 else "s")


def ttr_ms(value: object, argument: str = "ttr") -> int:
    """A time to run: more than 0 (at least 1 ms) and at most a year."""
    return duration_ms(value, argument, minimum_ms=1, maximum_ms=MAX_TTR_MS)


def epoch_ms(value: object, argument: str = "run_at") -> int:
    """An aware datetime or epoch seconds, as epoch milliseconds."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidArgument(argument, "must be timezone-aware (e.g. tzinfo=timezone.utc)")
        seconds = value.timestamp()
    elif _is_number(value):
        seconds = to_float(value)  # type: ignore[arg-type]
        if isinstance(value, int) and math.isinf(seconds):
            raise InvalidArgument(argument, "must lie between 1970 and the year 9999")
        if not math.isfinite(seconds * 1000):  # a huge float overflows as milliseconds
            raise InvalidArgument(argument, "must be a finite number of epoch seconds")
    else:
        raise InvalidArgument(
            argument, f"must be an aware datetime or epoch seconds, not {type(value).__name__}"
        )
    ms = round(seconds * 1000)
    if not 0 <= ms <= MAX_EPOCH_MS:
        raise InvalidArgument(argument, "must lie between 1970 and the year 9999")
    return ms


def clock_ms(value: object) -> float:
    """What a client's ``clock`` returned (epoch seconds) in epoch milliseconds;
    InvalidArgument naming ``clock`` for anything else (milliseconds, a datetime)."""
    seconds = to_float(value) if _is_number(value) else math.nan  # type: ignore[arg-type]
    if not math.isfinite(seconds):
        raise InvalidArgument(
            "clock", f"must return epoch seconds as a finite number, not {value!r:.60}"
        )
    if not 0 <= seconds * 1000 <= MAX_EPOCH_MS:
        raise InvalidArgument(
            "clock",
            f"must return epoch seconds from 1970 to the year 9999, not {value!r:.60}"
            " (milliseconds?)",
        )
    return seconds * 1000


def integer(value: object, argument: str, low: int, high: int) -> int:
    """An int (bool excluded) within [low, high]."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(argument, f"must be an integer, not {type(value).__name__}")
    if not low <= value <= high:
        raise InvalidArgument(argument, f"must be between {low} and {high}")
    return value


def priority(value: object) -> int:
    """A priority: an int; lower numbers run first."""
    return integer(value, "priority", *PRIORITY_RANGE)


def optional_positive(value: object, argument: str) -> int | None:
    """None, or an int from 1 to 2^31 - 1 (max_attempts)."""
    return None if value is None else integer(value, argument, 1, 2**31 - 1)


MAX_VERSION = 2**53 - 1
"""The highest job or schedule version: the largest integer a Lua number holds exactly.
Versions go on from ``version_floor``, which with history off grows by about one per job a
topic ends (with history on, once per trim): a busy topic passes 2^31 in a day or two."""


def optional_version(value: object, argument: str) -> int | None:
    """None, or a version to compare with (``if_version``): an int from 1 to MAX_VERSION."""
    return None if value is None else integer(value, argument, 1, MAX_VERSION)


def count(value: object, argument: str = "count") -> int:
    """How many jobs at once: 1 to 1000."""
    return integer(value, argument, 1, MAX_COUNT)


def text(value: object, argument: str) -> str:
    """An optional free text (error, reason): a str of valid Unicode (no lone surrogates:
    they have no UTF-8) of at most 64 Ki characters."""
    if not isinstance(value, str):
        raise InvalidArgument(argument, f"must be a string, not {type(value).__name__}")
    if len(value) > MAX_ERROR_CHARS:
        raise InvalidArgument(argument, f"must be at most {MAX_ERROR_CHARS} characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            where = f"one at character {exc.start}"
            message = f"must be valid Unicode (no lone surrogates): {where}"
            raise InvalidArgument(argument, message) from None
    return value


def state(value: object) -> JobState:
    """A JobState, or its name."""
    try:
        return JobState(value if isinstance(value, str) else "")
    except ValueError:
        names = ", ".join(s.value for s in JobState)
        raise InvalidArgument("state", f"must be one of {names}, not {value!r}") from None


def reserved_job(job: Any) -> tuple[str, str | bytes, str]:
    """The (topic, id, token) of anything shaped like a reserved Job."""
    if job is None:  # ack(reserve(topic)) when nothing was due
        raise InvalidArgument("job", "is None: reserve returns None when no job is due")
    for attribute in ("topic", "id", "token"):
        if not hasattr(job, attribute):
            raise InvalidArgument("job", f"must have .topic, .id and .token (no .{attribute})")
    if job.token is not None and not isinstance(job.token, str):
        raise InvalidArgument("job.token", f"must be a str, not {type(job.token).__name__}")
    if not job.token:
        raise InvalidArgument("job", "has no token: only jobs returned by reserve can be acked")
    return validate_topic(job.topic, "job.topic"), stored_id(job.id, "job.id"), job.token
