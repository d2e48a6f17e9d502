"""A job's result as stored: what a handler returned (or ``ack(result=...)`` gave), as bytes."""

from __future__ import annotations

import json

from .errors import InvalidArgument

RESULT_LIMIT = 64 * 1024
"""Bytes of a result kept; the scripts truncate a longer one and say so in the acked event."""


def encode(value: object, argument: str = "result") -> bytes | None:
    """A result as bytes: bytes as they are, str as UTF-8, None as none, anything else as JSON.

    Raises:
        InvalidArgument: when the value cannot be encoded as JSON.
    """
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    try:
        # allow_nan=False: NaN and Infinity are not JSON; a reader of the result would fail.
        return json.dumps(value, separators=(",", ":"), default=_reject, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(argument, f"must be bytes, str or JSON-encodable: {exc}") from exc


def _reject(value: object) -> object:
    raise TypeError(f"{type(value).__name__} is not JSON-encodable")
