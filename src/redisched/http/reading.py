"""Read a request body, bounded, and decode it into a schema type in one pass."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request

from ..json_body import MAX_DEPTH, too_deep
from ..json_keys import PATH_SEARCH_BYTES, path, repeated_key, walk
from .errors import ApiError, from_decode_error

T = TypeVar("T")


BODY_IDLE_TIMEOUT = 30.0
"""Seconds a request body in parts may pause between two of them before the request is
answered 408: a client that sent fewer bytes than its Content-Length (or a chunked body that
never ends) held its connection for ever."""


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
    receive = request.receive
    while True:
        if chunks:  # a body in parts: each must come within BODY_IDLE_TIMEOUT of the last
            try:
                async with asyncio.timeout(BODY_IDLE_TIMEOUT):
                    message = await receive()
            except TimeoutError:
                raise ApiError(
                    408, "request_timeout",
                    f"the request body stopped arriving for {BODY_IDLE_TIMEOUT:g} s",
                    headers={"Connection": "close"},
                ) from None  # fmt: skip
        else:  # the first part (most bodies come whole): no timer to arm
            message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "bad_request", "the client went away before the body ended")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def query_flag(request: Request, name: str) -> bool:
    """A boolean query parameter: ``true`` / ``false`` (or ``1`` / ``0``, any case); absent is
    false; anything else a 400 naming it."""
    text = request.query_params.get(name, "false").lower()
    if text not in ("true", "false", "1", "0"):
        raise ApiError(400, "invalid", "must be true or false", name)
    return text in ("true", "1")


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
        if str(exc).startswith(OUT_OF_RANGE):  # msgspec names no key there: `$[...][...]`
            _refuse_out_of_range(data, _free_field(decoder))
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


def _refuse_lone_surrogates(data: bytes, free_field: str | None) -> None:
    """400 naming the first key or string that escapes half of a UTF-16 surrogate pair."""
    message = "must be valid Unicode (no lone surrogates)"
    if len(data) > PATH_SEARCH_BYTES:
        raise ApiError(400, "invalid", message, free_field)
    for value, link in walk(data):
        if isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ApiError(400, "invalid", message, path(link)) from None


OUT_OF_RANGE = "Number out of range"
"""msgspec's message for a number no float holds (``1e400``)."""


def _refuse_out_of_range(data: bytes, free_field: str | None) -> None:
    """400 naming the first number too large for a float (msgspec's error says only where it
    is as ``$[...][...]``)."""
    message = "is a number out of range (no 64-bit float holds it)"
    if len(data) > PATH_SEARCH_BYTES:
        raise ApiError(400, "invalid", f"a number {message}", free_field)
    for value, link in walk(data):
        if isinstance(value, float):
            raise ApiError(400, "invalid", f"{path(link)} {message}", path(link))


def _refuse_duplicate_keys(data: bytes, free_field: str | None) -> None:
    """400 naming the key when any JSON object of the request repeats a key (see
    :func:`redisched.json_keys.repeated_key`)."""
    found = repeated_key(data, free_field)
    if found is not None:
        key, field = found
        raise ApiError(400, "invalid", f"the JSON object has the key {key!r} twice", field)
