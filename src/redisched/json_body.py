"""How job bodies (bytes) travel as JSON: over HTTP, in webhooks and in bridge messages.

A job body is bytes in Redis and any JSON value on the wire. The rule, in one place:

* A JSON value is stored as its compact JSON encoding (``{"a": 1}`` -> ``b'{"a":1}'``).
* A body whose bytes are a JSON text (anything put as JSON, and any JSON put from Python)
  reads back as that JSON value, byte for byte as stored.
* Other valid UTF-8 (text put from the CLI, redis-cli, a form, or JSON nested deeper than
  :data:`MAX_DEPTH` levels) reads back as a JSON string of that text.
* Any other bytes (not UTF-8) read back as ``{"$base64": "<base64>"}`` (standard alphabet,
  padded). Writers accept the same marker - an object whose only key is ``"$base64"`` - and
  store the decoded bytes, so any bytes can be written and read back exactly.
* A stored JSON text that is itself such a marker object reads back base64-wrapped, so that
  a client decoding the marker gets the stored bytes exactly.

Text read back as a string is the one lossy direction: writing that string back as JSON
stores it quoted (``"hello"``, not ``hello``); send it as ``{"$base64": ...}`` to keep the
bytes. Rendering never fails, whatever bytes are stored.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import msgspec

from .errors import InvalidArgument

MARKER = "$base64"
MAX_DEPTH = 512
"""The deepest JSON nesting read as JSON (writers refuse deeper; readers show it as text).

Well below Python's recursion limit, which msgspec and the json module both run into at a
depth that depends on the caller's stack (about 1,000 at best)."""

# A string, in one pass: possessive runs keep no backtracking state, and the closing quote is
# optional, so an unterminated string ends the scan instead of failing and being tried again
# from each quote inside it (quadratic: a 64 KB body of escaped quotes held the loop 12 s).
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"?', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


class NotJson(ValueError):
    """Bytes that are no JSON text within :data:`MAX_DEPTH` levels."""


def too_deep(data: bytes, limit: int = MAX_DEPTH) -> bool:
    """True when the JSON text ``data`` nests arrays/objects deeper than ``limit``.

    Cheap for ordinary bodies (two byte counts); brackets inside strings are not counted, nor
    after an unterminated one (no JSON text then). Linear in ``len(data)`` whatever it holds.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub(b"", data)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def json_value(data: bytes) -> Any:
    """The JSON value of ``data``; NotJson when it is no JSON text within MAX_DEPTH levels."""
    if too_deep(data):
        raise NotJson(f"nested deeper than {MAX_DEPTH} levels")
    try:
        return msgspec.json.decode(data)
    except (msgspec.DecodeError, ValueError, RecursionError) as exc:
        raise NotJson(str(exc)) from None


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
    try:
        return msgspec.json.encode(value)
    except RecursionError:
        raise InvalidArgument(argument, f"is nested deeper than {MAX_DEPTH} levels") from None


def to_json(data: bytes) -> msgspec.Raw:
    """The JSON form of stored bytes: the JSON text itself, a string of other UTF-8 text, else
    a ``$base64`` marker. Never fails."""
    try:
        value = json_value(data)
    except NotJson:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return _wrapped(data)
        return msgspec.Raw(msgspec.json.encode(text))
    if _is_marker(value):
        return _wrapped(data)
    return msgspec.Raw(data)


def as_base64(data: bytes) -> msgspec.Raw:
    """Stored bytes as the ``$base64`` marker, whatever they hold: their exact bytes, for a
    reader whose JSON parser would not keep a JSON text as it is (its spacing, its numbers)."""
    return _wrapped(data)


def _wrapped(data: bytes) -> msgspec.Raw:
    return msgspec.Raw(msgspec.json.encode({MARKER: base64.b64encode(data).decode("ascii")}))
