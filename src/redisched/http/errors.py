"""JSON errors: every failure becomes ``{"error": {"code", "message", "field"}}``.

Handlers raise :class:`ApiError` (or let a redisched error through); the handlers registered
by :func:`exception_handlers` turn each into its status code, so no input produces a 500.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..errors import (
    BackendError,
    InvalidArgument,
    NotReplicated,
    StaleReservation,
    VersionConflict,
)
from ..validate import MAX_VERSION

log = logging.getLogger(__name__)

_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_NAMED = re.compile(r"(?:unknown|required) field `(?P<name>[^`]*)`")
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


class ApiError(Exception):
    """An HTTP error with a JSON body.

    Args:
        status: the HTTP status code.
        code: a short machine-readable name (``not_found``, ``stale_token``...).
        message: what went wrong, for a human.
        field: the request field (or header) at fault, if one is.
        headers: extra response headers.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = dict(headers or {})


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The JSON error response every failure uses (a lone surrogate, echoed from the request,
    shown as ``\\udxxx``: JSON text cannot carry one), ``Cache-Control: no-store`` as every
    answer of the API (a 404 is cacheable by default: a cache would keep "no such job")."""
    error = {"code": code, "message": message, "field": field}
    try:
        body = msgspec.json.encode({"error": error})
    except UnicodeEncodeError:
        shown = {k: v and v.encode("utf-8", "backslashreplace").decode() for k, v in error.items()}
        body = msgspec.json.encode({"error": shown})
    kept = {"Cache-Control": "no-store", **(headers or {})}
    return Response(body, status, headers=kept, media_type="application/json")


def from_decode_error(exc: msgspec.DecodeError | ValueError) -> ApiError:
    """Turn a msgspec decoding error into a 400 naming the field at fault."""
    message = str(exc)
    if not isinstance(exc, msgspec.ValidationError):
        if isinstance(exc, UnicodeDecodeError):
            message = "the request body is not valid UTF-8"
        return ApiError(400, "malformed_json", f"the request body is not valid JSON: {message}")
    match = _AT.search(message)
    path = match.group("path") if match else ""
    text = message[: match.start()] if match else message
    named = _NAMED.search(text)
    if named:
        path = f"{path}.{named.group('name')}" if path else named.group("name")
    return ApiError(400, "invalid", text, path or None)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)


async def _invalid_argument(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidArgument)
    return error_response(400, "invalid", exc.message, exc.argument)


async def _stale(request: Request, exc: Exception) -> Response:
    return error_response(409, "stale_token", str(exc), "token")


async def _conflict(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VersionConflict)
    headers = {"ETag": etag(exc.current_version)} if exc.current_version else None
    return error_response(412, "version_conflict", str(exc), "If-Match", headers)


async def _backend(request: Request, exc: Exception) -> Response:
    log.warning("backend error on %s %s: %s", request.method, request.url.path, exc)
    return error_response(503, "backend_unavailable", str(exc), None, {"Retry-After": "1"})


async def _not_replicated(request: Request, exc: Exception) -> Response:
    # Stored on the primary but not on a replica: the client may PUT the same id again.
    return error_response(503, "not_replicated", str(exc), None, {"Retry-After": "1"})


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), None, exc.headers)


async def _internal(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", "internal server error (see the server log)")


def exception_handlers() -> dict[Any, Any]:
    """The Starlette ``exception_handlers`` mapping of the API."""
    return {
        ApiError: _api_error,
        InvalidArgument: _invalid_argument,
        StaleReservation: _stale,
        VersionConflict: _conflict,
        BackendError: _backend,
        NotReplicated: _not_replicated,
        HTTPException: _http,
        Exception: _internal,
    }


def etag(version: int) -> str:
    """The ETag of a job version (a strong, quoted validator)."""
    return f'"{version}"'


def etag_matches(header: str | None, tag: str) -> bool:
    """Whether an ``If-None-Match`` value names ``tag``: ``*``, or a list of ETags compared
    weakly (``W/"3"`` matches ``"3"``), as RFC 9110 has a GET compare them; a bare version
    (``3``) as ``If-Match`` takes one."""
    if header is None:
        return False
    for value in header.split(","):
        text = value.strip()
        if text == "*" or text.removeprefix("W/") == tag or f'"{text}"' == tag:
            return True
    return False


def parse_etag(value: str, header: str) -> int:
    """The version in an ``If-Match`` header value: the ETag a job or schedule answers
    (``"3"``) or the bare version (``3``).

    Refused with a 400 naming the header, each with its reason: a weak tag (``W/"3"``: an
    If-Match compares strongly, so it could never match), ``*`` and a list (a compare-and-set
    takes one version), and any other text (``"03"`` is not a tag this server gives).
    """
    text = value.strip()
    if text.startswith("W/"):
        weak = f"{header} compares strong ETags: a weak one (W/...) never matches"
        raise ApiError(400, "invalid_header", f"{weak}; give the ETag as it was sent", header)
    if text == "*" or "," in text:
        many = f"{header} takes one version (an ETag), not * or a list"
        raise ApiError(400, "invalid_header", many, header)
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    if not (text.isascii() and text.isdigit()) or len(text) > 16 or text[0] == "0":
        raise ApiError(400, "invalid_header", f"{header} must be a job version (an ETag)", header)
    version = int(text)
    if version > MAX_VERSION:
        raise ApiError(400, "invalid_header", f"{header} must be a job version (an ETag)", header)
    return version
