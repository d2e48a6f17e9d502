"""Read a request body, bounded, and decode it into a schema type in one pass."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request

from ..json_body import MAX_DEPTH, too_deep
from .errors import ApiError, from_decode_error

T = TypeVar("T")


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the request body is over {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body; 413 as soon as it is known to exceed ``limit`` bytes.

    A Content-Length over the limit is refused before any of the body is read; a chunked
    body is refused at the first chunk that crosses the limit. Reads the ASGI messages
    directly (the hot path of every write).
    """
    for name, value in request.scope["headers"]:
        if name == b"content-length":
            if not value.isdigit():
                raise ApiError(
                    400, "bad_request", "Content-Length must be a number", "Content-Length"
                )
            if int(value) > limit:
                raise _too_large(limit)
            break
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "bad_request", "the client went away before the body ended")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def header_values(request: Request, names: tuple[bytes, ...]) -> list[str | None]:
    """The first value of each header in ``names`` (lower case), in one pass over them."""
    found: list[str | None] = [None] * len(names)
    for name, value in request.scope["headers"]:
        if name in names:
            index = names.index(name)
            if found[index] is None:
                found[index] = value.decode("latin-1")
    return found


async def read_json(
    request: Request, decoder: msgspec.json.Decoder[T], limit: int, *, empty: bytes | None = None
) -> T:
    """Decode the body with ``decoder``; an empty body is ``empty`` if given, else an error."""
    data = await read_body(request, limit)
    if not data or data.isspace():
        if empty is None:
            raise ApiError(400, "malformed_json", "the request needs a JSON body")
        data = empty
    if too_deep(data, MAX_DEPTH + 1):  # the request object is one level around the body
        raise ApiError(
            400,
            "too_deep",
            f"the JSON is nested deeper than {MAX_DEPTH} levels",
            _free_field(decoder),
        )
    try:
        value = decoder.decode(data)
    except (msgspec.DecodeError, ValueError) as exc:
        if b"\\u" in data and not isinstance(exc, msgspec.ValidationError):
            _refuse_lone_surrogates(data, _free_field(decoder))  # msgspec's message misleads
        raise from_decode_error(exc) from None
    if b"{" in data:
        _refuse_duplicate_keys(data, _free_field(decoder))
    return value


FREE_FIELDS = ("body", "result", "contents")
"""The request fields that hold free JSON: a job's body, an ack's result, a legacy
``/schedule``'s contents."""


def _free_field(decoder: msgspec.json.Decoder[Any]) -> str | None:
    """The request field of ``decoder``'s type that holds free JSON, if any."""
    fields = getattr(decoder.type, "__struct_fields__", ())
    return next((name for name in FREE_FIELDS if name in fields), None)


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its key-value pairs, in order (the json module's object_pairs_hook)."""


class _Repeating(dict[str, Any]):
    """A JSON object that has a key twice: ``repeated``, the first such key."""

    repeated = ""


def _repeated_key(pairs: list[tuple[str, Any]]) -> str | None:
    """The first key that ``pairs`` (an object's, in order) gives twice, if any."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    return None


Link = tuple["Link | None", "str | int"]
"""Where a value sits: its parent's link and its key or index (a path, made only when
needed: a walk that made every path's text cost seconds on a large nested body)."""


def _walk(text: bytes) -> Iterator[tuple[Any, Link | None]]:
    """Each object (as :class:`_Pairs`), key and string of the JSON text with its link, in
    document order, iteratively (a body may nest 512 levels); nothing when the json module
    refuses the text (what msgspec accepted, json may not: huge integers)."""
    try:
        tree = json.loads(text, object_pairs_hook=_Pairs)
    except (ValueError, RecursionError):
        return
    stack: list[tuple[Any, Link | None]] = [(tree, None)]
    while stack:
        value, link = stack.pop()
        if isinstance(value, _Pairs):
            yield value, link
            for key, item in reversed(value):
                stack += ((item, (link, key)), (key, (link, key)))  # the key comes first
        elif isinstance(value, list):
            stack.extend((item, (link, index)) for index, item in reversed(list(enumerate(value))))
        elif isinstance(value, str):
            yield value, link


_PLAIN_KEY = re.compile(r'[^.\[\]"\\]+')


def _step(step: str | int) -> str:
    """One step of a path: ``[0]``, ``.name``, or ``["a.b"]`` for a key that would read as
    more than one step (or not be printable), written as a JSON string (ASCII only)."""
    if isinstance(step, int):
        return f"[{step}]"
    if _PLAIN_KEY.fullmatch(step) and step.isprintable():
        return f".{step}"
    return f"[{json.dumps(step)}]"


def _path(link: Link | None) -> str | None:
    """The field path of a link as the API names fields (``body.items[0].name``)."""
    parts: list[str] = []
    while link is not None:
        link, step = link
        parts.append(_step(step))
    return "".join(reversed(parts)).removeprefix(".") or None


PATH_SEARCH_BYTES = 256 * 1024
"""The largest request whose fault is located to its path: the walk that finds it takes
~0.1 s for this much JSON (a larger request names its free field, ``body``, instead)."""


def _refuse_lone_surrogates(data: bytes, free_field: str | None) -> None:
    """400 naming the first key or string that escapes half of a UTF-16 surrogate pair."""
    message = "must be valid Unicode (no lone surrogates)"
    if len(data) > PATH_SEARCH_BYTES:
        raise ApiError(400, "invalid", message, free_field)
    for value, link in _walk(data):
        if isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ApiError(400, "invalid", message, _path(link)) from None


_STRING = re.compile(rb'("[^"\\]*(?:\\.[^"\\]*)*")(\s*:)?')


def _may_repeat_a_key(data: bytes) -> bool:
    """False when no object key of the (valid) JSON text occurs twice, even in two objects.

    Without a backslash, the text split at its quotes alternates between the outside and the
    inside of strings, and a string is a key when a colon follows it. Otherwise one pass of a
    C regex over the string tokens, left to right (outside strings JSON has no quotes, so each
    match starts at an opening quote); a key written with escapes counts as a possible repeat.
    """
    if b"\\" not in data:
        parts = data.split(b'"')
        pairs = zip(parts[1::2], parts[2::2], strict=True)  # (string, what follows it)
        keys = [string for string, after in pairs if after.lstrip()[:1] == b":"]
        return len(set(keys)) != len(keys)
    keys = [string for string, colon in _STRING.findall(data) if colon]
    return len(set(keys)) != len(keys) or any(b"\\" in key for key in keys)


def _refuse_duplicate_keys(data: bytes, free_field: str | None) -> None:
    """400 naming the key when any JSON object of the request repeats a key.

    msgspec, like most parsers, keeps the last of two equal keys; a request that says two
    things must not be read as one of them. The exact check (the json module) runs only
    when a cheap scan finds a key twice in the text. A repeated request field is named as
    itself; one inside the free field by its path, up to :data:`PATH_SEARCH_BYTES`.
    """
    if not _may_repeat_a_key(data):
        return
    repeated: list[str] = []

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found = dict(pairs)
        if len(found) == len(pairs):
            return found
        marked = _Repeating(found)
        marked.repeated = _repeated_key(pairs) or ""
        repeated.append(marked.repeated)
        return marked

    try:
        request = json.loads(data, object_pairs_hook=unique)
    except (ValueError, RecursionError):  # what msgspec accepted, json may not (huge ints)
        return
    if not repeated:
        return
    field: str | None
    if isinstance(request, _Repeating):
        key = field = request.repeated
    else:
        key, field = repeated[0], free_field
        if len(data) <= PATH_SEARCH_BYTES:  # only for a request refused anyway: a whole walk
            for value, link in _walk(data):
                inner = _repeated_key(value) if isinstance(value, _Pairs) else None
                if inner is not None:
                    key, field = inner, _path((link, inner))
                    break
    raise ApiError(400, "invalid", f"the JSON object has the key {key!r} twice", field)
