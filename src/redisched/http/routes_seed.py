"""The original project's routes, kept working: ``POST /schedule/{topic}`` and ``/cancel/{topic}``.

``/schedule`` creates or replaces job ``id`` with ``contents`` as its body (the same JSON and
``$base64`` rules as PUT), due after ``delay`` seconds; ``/cancel`` deletes it.
"""

from __future__ import annotations

from collections.abc import Awaitable

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from . import schemas
from .endpoint import Endpoint, json_response
from .partitioned import finding, put_routed, refuse_misrouted_put, route
from .paths import path_param
from .reading import read_json
from .routes_jobs import PREFER, WRITTEN, not_found, stored_body, wants_minimal, write
from .runtime import runtime

_SCHEDULE = msgspec.json.Decoder(schemas.Schedule)
_CANCEL = msgspec.json.Decoder(schemas.Cancel)


async def schedule(request: Request) -> Response:
    """POST /schedule/{topic}: like PUT /v1/topics/{topic}/jobs/{id} with a delay."""
    rt = runtime(request)
    topic = path_param(request, "topic")
    spec = await read_json(request, _SCHEDULE, rt.settings.max_request_size)
    await refuse_misrouted_put(rt, topic, spec.id)  # a partition's name: its own ids, as PUT
    data = stored_body(spec.contents, rt.settings.max_body_size, "contents")
    minimal = wants_minimal(request)

    def put_into(name: str) -> Awaitable[Response]:
        call = rt.client.ops.put(
            name, spec.id, data, delay=spec.delay, replace=True, read_back=not minimal
        )
        return write(rt.client, call, name, spec.id, minimal)

    return await put_routed(
        rt, await route(rt, topic, spec.id), put_into, lambda: route(rt, topic, spec.id)
    )


async def cancel(request: Request) -> Response:
    """POST /cancel/{topic}: delete job ``id``; 404 when there is none."""
    rt = runtime(request)
    topic = path_param(request, "topic")
    spec = await read_json(request, _CANCEL, rt.settings.max_request_size)
    topic = await route(rt, topic, spec.id)
    topic, deleted = await finding(
        request, topic, lambda name: rt.client.delete(name, spec.id), spec.id
    )
    if not deleted:
        raise not_found(topic, spec.id)
    return json_response(schemas.Cancelled(spec.id, True))


ENDPOINTS = (
    Endpoint(
        "POST", "/schedule/{topic}", schedule, "Schedule job id (create or replace)",
        schemas.Schedule,
        responses={201: WRITTEN, 200: WRITTEN, 202: WRITTEN}, params=(PREFER,), tag="seed",
    ),
    Endpoint(
        "POST", "/cancel/{topic}", cancel, "Cancel job id", schemas.Cancel,
        responses={200: schemas.Cancelled, 404: schemas.Error}, tag="seed",
    ),
)  # fmt: skip
"""The seed routes."""
