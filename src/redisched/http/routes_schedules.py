"""Routes on recurring schedules: put (create or replace), get, list, delete.

PUT creates (201) or replaces (200) the schedule ``id`` of a topic; ``If-Match: <version>``
makes it a compare-and-set (412 on a mismatch). The ETag of a schedule is its version;
``GET ...?body=base64`` shows the body as ``{"$base64": ...}``, its exact bytes, for a reader
whose JSON parser would not keep a JSON text as it is. A bad cron, time zone, interval or time
window is a 400 naming the field, and changes nothing stored. On a partitioned topic a
schedule lives in the partition its id routes to (as a job with that id would), so its
occurrences run there; the listing shows the topic's schedules and its partitions', each with
the topic that holds it.
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ..errors import VersionConflict
from ..json_body import as_base64
from ..models import Schedule
from ..partition_setting import all_schedules, run_async
from ..shapes import schedule_out
from . import schemas
from .endpoint import Endpoint, Param, json_response
from .errors import ApiError, etag, parse_etag
from .partitioned import layout, put_routed, refuse_misrouted_put, schedule_route
from .paths import path_param
from .reading import read_json
from .routes_jobs import stored_body
from .runtime import runtime

_PUT = msgspec.json.Decoder(schemas.PutSchedule)


def _not_found(topic: str, sid: str) -> ApiError:
    return ApiError(404, "not_found", f"no schedule {sid!r} in topic {topic!r}", "id")


async def put_schedule(request: Request) -> Response:
    """PUT /v1/topics/{topic}/schedules/{id}."""
    rt = runtime(request)
    topic, sid = path_param(request, "topic"), path_param(request, "id")
    spec = await read_json(request, _PUT, rt.settings.max_request_size)
    if_match, if_none_match = request.headers.get("if-match"), request.headers.get("if-none-match")
    if_version = None if if_match is None else parse_etag(if_match, "If-Match")
    if if_none_match is not None:  # create-only, as a job's PUT
        if if_none_match.strip() != "*":
            raise ApiError(400, "invalid_header", "If-None-Match on PUT must be *", "If-None-Match")
        if if_match is not None:
            raise ApiError(
                400, "invalid_header", "give If-Match or If-None-Match, not both", "If-None-Match"
            )
    data = stored_body(spec.body, rt.settings.max_body_size)
    await refuse_misrouted_put(rt, topic, sid, "schedule")  # a partition's name: its own ids

    async def schedule_into(name: str) -> Schedule:
        call = rt.client.ops.schedule(
            name, sid, data, cron=spec.cron, every=spec.every, tz=spec.tz,
            start_at=spec.start_at, end_at=spec.end_at, ttr=spec.ttr, priority=spec.priority,
            max_attempts=spec.max_attempts, if_version=if_version,
            create_only=if_none_match is not None,
        )  # fmt: skip
        return await rt.client.execute(call)

    logical, topic = topic, await schedule_route(rt, topic, sid)
    try:
        schedule = await put_routed(
            rt, topic, schedule_into, lambda: schedule_route(rt, logical, sid)
        )
    except VersionConflict as conflict:
        if if_none_match is None:
            raise
        raise ApiError(
            412, "exists", f"schedule {sid!r} already exists in topic {topic!r}",
            "If-None-Match", {"ETag": etag(conflict.current_version)},
        ) from None  # fmt: skip
    status = 201 if schedule.version == 1 else 200
    return json_response(schedule_out(schedule), status, {"ETag": etag(schedule.version)})


async def get_schedule(request: Request) -> Response:
    """GET /v1/topics/{topic}/schedules/{id}."""
    rt = runtime(request)
    topic, sid = path_param(request, "topic"), path_param(request, "id", stored=True)
    encoding = request.query_params.get("body")
    if encoding not in (None, "base64"):
        raise ApiError(400, "invalid", "must be base64 (or absent)", "body")
    holder = await schedule_route(rt, topic, sid)  # a partitioned topic's own name may hold it
    schedule = await rt.client.execute(rt.client.ops.get_schedule(holder, sid, own=True))
    if schedule is None:
        raise _not_found(topic, sid)
    out = schedule_out(schedule)
    if encoding is not None:
        out.body = as_base64(schedule.body)
    return json_response(out, 200, {"ETag": etag(schedule.version)})


async def list_schedules(request: Request) -> Response:
    """GET /v1/topics/{topic}/schedules."""
    rt = runtime(request)
    topic = path_param(request, "topic")
    partitions = await layout(rt, topic)
    count = None if partitions is None else partitions.count
    found = await run_async(rt.client, all_schedules(rt.client.ops, topic, count))
    return json_response(schemas.ScheduleList([schedule_out(s) for s in found]))


async def delete_schedule(request: Request) -> Response:
    """DELETE /v1/topics/{topic}/schedules/{id}."""
    rt = runtime(request)
    topic, sid = path_param(request, "topic"), path_param(request, "id", stored=True)
    if_match = request.headers.get("if-match")
    if_version = None if if_match is None else parse_etag(if_match, "If-Match")
    held = await schedule_route(rt, topic, sid)
    unscheduled = rt.client.ops.unschedule(held, sid, if_version=if_version, own=True)
    if not await rt.client.execute(unscheduled):
        raise _not_found(topic, sid)
    return Response(status_code=204)


_ONE = "/v1/topics/{topic}/schedules/{id}"
_IF_MATCH = Param("If-Match", "header", {"type": "string"}, description="CAS on this version.")
_IF_NONE_MATCH = Param("If-None-Match", "header", {"type": "string"}, description="* = create.")
_BODY_ENCODING = Param(
    "body", "query", {"type": "string", "enum": ["base64"]},
    description='base64: the body as {"$base64": its exact bytes}, JSON text or not.',
)  # fmt: skip

ENDPOINTS = (
    Endpoint(
        "PUT", _ONE, put_schedule, "Create or replace a recurring schedule",
        schemas.PutSchedule,
        responses={201: schemas.ScheduleOut, 200: schemas.ScheduleOut, 400: schemas.Error,
                   412: schemas.Error, 413: schemas.Error},
        params=(_IF_MATCH, _IF_NONE_MATCH), tag="schedules",
    ),
    Endpoint(
        "GET", _ONE, get_schedule, "Read a schedule",
        responses={200: schemas.ScheduleOut, 400: schemas.Error, 404: schemas.Error},
        params=(_BODY_ENCODING,), tag="schedules",
    ),
    Endpoint(
        "DELETE", _ONE, delete_schedule, "Delete a schedule and its pending occurrence",
        responses={204: None, 404: schemas.Error, 412: schemas.Error}, params=(_IF_MATCH,),
        tag="schedules",
    ),
    Endpoint(
        "GET", "/v1/topics/{topic}/schedules", list_schedules, "A topic's schedules",
        responses={200: schemas.ScheduleList}, tag="schedules",
    ),
)  # fmt: skip
"""The schedule routes."""
