"""Path parameters that may hold any character, ``/`` included.

Job ids and topic names are free text, so a client percent-encodes ``/`` as ``%2F``. ASGI
servers decode the path before routing, which would split such an id in two. The middleware
re-decodes the raw path leaving ``%2F`` and ``%25`` encoded, so routing sees one segment, and
:func:`path_param` decodes those two escapes of a matched parameter.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import ApiError

_KEPT = re.compile(rb"(%2[fF]|%25)")
_ESCAPE = re.compile(r"%2[fF]|%25")


def routing_path(raw_path: bytes) -> str:
    """The path with every escape decoded but ``%2F`` and ``%25`` (invalid UTF-8 kept as-is).

    A ``%`` that decoding leaves (one not followed by two hex digits, as in ``a%%32Fb``) is
    written ``%25``, so that :func:`path_param` decodes each escape of the raw path once.
    """
    parts = _KEPT.split(raw_path)
    decoded = b"".join(
        part if index % 2 else unquote_to_bytes(part).replace(b"%", b"%25")
        for index, part in enumerate(parts)
    )
    return decoded.decode("utf-8", "surrogateescape")


class RawPathMiddleware:
    """Route on the raw path so that ``%2F`` inside a parameter does not split it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("raw_path")
            if raw and b"%" in raw:
                scope = dict(scope)
                scope["path"] = routing_path(raw.split(b"?", 1)[0])
        await self.app(scope, receive, send)


def path_param(request: Request, name: str, *, stored: bool = False) -> str:
    """A path parameter with its ``%2F`` / ``%25`` escapes decoded, checked to be Unicode.

    With ``stored`` (the id of an existing job or schedule) bytes that are not UTF-8 are
    kept, decoded with ``surrogateescape``: a raw script call may have stored such an id, and
    the client sends it back as those bytes (:func:`redisched.validate.stored_id`).
    """
    value: str = request.path_params[name]
    if "%" in value:
        value = _ESCAPE.sub(lambda m: "/" if m.group(0) != "%25" else "%", value)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        if not (stored and is_escaped_bytes(value)):
            raise ApiError(400, "invalid", NOT_UTF8, name) from None
    return value


NOT_UTF8 = "must be percent-encoded UTF-8"


def is_escaped_bytes(value: str) -> bool:
    """True when every lone surrogate of ``value`` is a byte's ``surrogateescape``."""
    try:
        value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True
