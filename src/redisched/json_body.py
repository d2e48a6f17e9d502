"""How job bodies (bytes) travel as JSON: over HTTP, in webhooks and in bridge messages.

A job body is bytes in Redis and any JSON value on the wire:

* A JSON value is stored as its compact JSON encoding (``{"a": 1}`` -> ``b'{"a":1}'``).
* A body whose bytes are a JSON text (anything put as JSON, and any JSON put from Python)
  reads back as that JSON value, byte for byte as stored.
* Any other bytes (not UTF-8, not JSON, or empty) read back as ``{"$base64": "<base64>"}``
  (standard alphabet, padded). Writers accept the same marker - an object whose only key is
  ``"$base64"`` - and store the decoded bytes, so bytes round-trip both ways.
* A stored JSON text that is itself such a marker object reads back base64-wrapped, so that
  a client decoding the marker gets the stored bytes exactly.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import msgspec

from .errors import InvalidArgument

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
