"""A job's result as stored: what a handler returned (or ``ack(result=...)`` gave), as bytes."""

from __future__ import annotations

import json

from .errors import InvalidArgument

RESULT_LIMIT = 64 * 1024
"""Bytes of a result kept; the scripts truncate a longer one and say so in the acked event."""


def encode(value: object, argument: str = "result") -> bytes | None:
    """A result as bytes: bytes as they are, str as UTF-8, None as none, anything else as JSON.

    Raises:
        InvalidArgument: when the value cannot be encoded as JSON, or is a str with a lone
            surrogate (it has no UTF-8).
    """
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as exc:  # (surrogatepass stored bytes no reader decodes)
            message = f"must be valid Unicode (no lone surrogates): one at character {exc.start}"
            raise InvalidArgument(argument, message) from None
    try:
        # allow_nan=False: NaN and Infinity are not JSON; a reader of the result would fail.
        return json.dumps(value, separators=(",", ":"), default=_reject, allow_nan=False).encode()
    except (TypeError, ValueError, RecursionError) as exc:  # (a value nested too deep)
        raise InvalidArgument(argument, f"must be bytes, str or JSON-encodable: {exc}") from exc


def _reject(value: object) -> object:
    raise TypeError(f"{type(value).__name__} is not JSON-encodable")
