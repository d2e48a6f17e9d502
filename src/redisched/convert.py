"""Conversions of Redis reply values shared by the parsers: epoch ms and bytes to Python."""

from __future__ import annotations

from datetime import UTC, datetime

LATEST = datetime.max.replace(tzinfo=UTC)
"""What a time past the year 9999 reads as (no datetime holds it)."""
EARLIEST = datetime.fromtimestamp(0, tz=UTC)
"""What a time before 1970 reads as."""


def to_datetime(ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime; a time no datetime holds (a raw script
    call may store any number) reads as :data:`LATEST` or :data:`EARLIEST`, so that reading
    it never fails."""
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return LATEST if ms > 0 else EARLIEST


def text(value: bytes | None) -> str | None:
    """A reply's bytes as text (undecodable bytes replaced), None kept."""
    return None if value is None else value.decode("utf-8", "replace")


def stored_name(value: bytes) -> str:
    """A stored id (job, schedule, topic member) as text: its UTF-8, or, for bytes that are not
    UTF-8 (a raw script call stores any bytes), decoded with ``surrogateescape``: each byte
    that is not part of a UTF-8 character becomes a lone surrogate U+DC80..U+DCFF, and the
    text encodes back to the same bytes (:func:`redisched.validate.stored_id`).

    Hot parsers (a lease's jobs) try ``value.decode()`` themselves and call this only when it
    fails.
    """
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value.decode("utf-8", "surrogateescape")


def shown(text: str) -> str:
    """``text`` as it is shown in JSON, HTML and on a terminal: unchanged, unless it holds a
    byte that was not UTF-8 (:func:`stored_name`), which is written as ``\\xNN``."""
    try:
        text.encode()
    except UnicodeEncodeError:
        try:
            data = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a lone surrogate of another kind: no bytes to show
            return text.encode("utf-8", "backslashreplace").decode()
        return data.decode("utf-8", "backslashreplace")
    return text
