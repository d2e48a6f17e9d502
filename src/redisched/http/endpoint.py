"""The declaration of one API operation: route, handler and the types that document it.

Routes and ``/openapi.json`` are both built from these, so the document cannot drift from
what the handlers accept.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .. import shapes
from .errors import ApiError

Handler = Callable[[Request], Awaitable[Response]]
ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class Param:
    """A query or header parameter, for the OpenAPI document.

    Attributes:
        name: the parameter's name.
        where: ``query`` or ``header``.
        schema: its JSON Schema.
        required: whether it must be given.
        description: one line for the reader.
    """

    name: str
    where: str
    schema: Mapping[str, Any]
    required: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One method on one path.

    Attributes:
        method: the HTTP method.
        path: the route template, e.g. ``/v1/topics/{topic}/jobs/{id}``.
        handler: the Starlette endpoint.
        summary: one line for the OpenAPI document.
        body: the msgspec type the request body is decoded into, if any.
        body_required: False when an empty body is accepted.
        responses: status code -> response type (None: no body; a str: a media type; a
            tuple: any of these types).
        params: query and header parameters.
        tag: the OpenAPI tag grouping the operation.
    """

    method: str
    path: str
    handler: Handler
    summary: str
    body: type | None = None
    body_required: bool = True
    responses: Mapping[int, type | tuple[type, ...] | str | None] = field(default_factory=dict)
    params: Sequence[Param] = ()
    tag: str = "jobs"


def query_checked(endpoint: Endpoint) -> Handler:
    """The endpoint's handler, refusing (400 naming it) a query parameter the endpoint does not
    declare, or one given twice: a misspelt filter must not list everything, and of two values
    neither may be silently chosen. The service routes (health, metrics, the OpenAPI
    document) take none and ignore any, as monitors add their own."""
    handler = endpoint.handler
    if endpoint.tag == "service":  # /healthz, /metrics: probes and scrapers may add their own
        return handler
    known = frozenset(p.name for p in endpoint.params if p.where == "query")
    writes = endpoint.method not in ("GET", "HEAD")
    honoured = frozenset(p.name.lower().encode() for p in endpoint.params if p.where == "header")

    async def checked(request: Request) -> Response:
        if writes:
            _check_conditions(request, honoured)
        if request.scope["query_string"]:
            names = [name for name, _ in request.query_params.multi_items()]
            for name in names:
                if name not in known:
                    accepted = ", ".join(sorted(known)) or "none"
                    message = f"is not a query parameter of this route (accepted: {accepted})"
                    raise ApiError(400, "invalid", message, name)
                if names.count(name) > 1:
                    raise ApiError(400, "invalid", "is given more than once", name)
        return await handler(request)

    checked.__name__ = checked.__qualname__ = handler.__name__
    checked.__doc__ = handler.__doc__
    return checked


_CONDITIONS = {b"if-match": "If-Match", b"if-none-match": "If-None-Match"}


def _check_conditions(request: Request, honoured: frozenset[bytes]) -> None:
    """400 naming a precondition header that a write does not honour (it would act
    unconditionally: a DELETE with If-None-Match deleted the job) or that is given twice (of
    two, the first was used and the other silently dropped)."""
    seen: list[bytes] = []
    for name, _ in request.scope["headers"]:
        if name in _CONDITIONS:
            shown = _CONDITIONS[name]
            if name not in honoured:
                message = "is not honoured by this route: the request would not be conditional"
                raise ApiError(400, "invalid_header", f"{shown} {message}", shown)
            if name in seen:
                raise ApiError(400, "invalid_header", f"{shown} is given more than once", shown)
            seen.append(name)


class JsonResponse(Response):
    """An application/json response of encoded bytes, its headers made in one step (the
    job routes answer thousands a second; Starlette's ``Response`` renders and checks more).

    ``Cache-Control: no-store``: the answers are live state, some hold reservation tokens, and
    a job's state changes without its version (its ETag), so a browser that kept a job and
    revalidated it with If-None-Match would be told 304 and show the job as it was.
    """

    media_type = "application/json"

    def __init__(
        self, body: bytes, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        self.status_code = status
        self.background = None
        self.body = body
        self.raw_headers = [
            (b"content-length", b"%d" % len(body)), (b"content-type", b"application/json"),
            (b"cache-control", b"no-store"),
        ]  # fmt: skip
        if headers:
            self.raw_headers += [
                (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
            ]


def json_response(
    value: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``value`` encoded by msgspec as an application/json response."""
    try:  # shapes.encode, inlined: every answer comes here
        body = ENCODER.encode(value)
    except UnicodeEncodeError:
        body = ENCODER.encode(shapes.readable(value))
    return JsonResponse(body, status, headers)
