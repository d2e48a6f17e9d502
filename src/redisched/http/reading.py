"""Read a request body, bounded, and decode it into a schema type in one pass."""

from __future__ import annotations

from typing import TypeVar

import msgspec
from starlette.requests import Request

from .errors import ApiError, from_decode_error

T = TypeVar("T")


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the request body is over {limit} bytes")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body; 413 as soon as it is known to exceed ``limit`` bytes.

    A Content-Length over the limit is refused before any of the body is read; a chunked
    body is refused at the first chunk that crosses the limit.
    """
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isascii() or not length.isdigit():
            raise ApiError(400, "bad_request", "Content-Length must be a number", "Content-Length")
        if int(length) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(
    request: Request, decoder: msgspec.json.Decoder[T], limit: int, *, empty: bytes | None = None
) -> T:
    """Decode the body with ``decoder``; an empty body is ``empty`` if given, else an error."""
    data = await read_body(request, limit)
    if not data.strip():
        if empty is None:
            raise ApiError(400, "malformed_json", "the request needs a JSON body")
        data = empty
    try:
        return decoder.decode(data)
    except (msgspec.DecodeError, ValueError) as exc:
        raise from_decode_error(exc) from None
