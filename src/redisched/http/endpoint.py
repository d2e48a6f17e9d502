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


class JsonResponse(Response):
    """An application/json response of encoded bytes, its headers made in one step (the
    job routes answer thousands a second; Starlette's ``Response`` renders and checks more)."""

    media_type = "application/json"

    def __init__(
        self, body: bytes, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> None:
        self.status_code = status
        self.background = None
        self.body = body
        self.raw_headers = [
            (b"content-length", b"%d" % len(body)), (b"content-type", b"application/json"),
        ]  # fmt: skip
        if headers:
            self.raw_headers += [
                (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
            ]


def json_response(
    value: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``value`` encoded by msgspec as an application/json response."""
    return JsonResponse(ENCODER.encode(value), status, headers)
