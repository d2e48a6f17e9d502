"""JSON endpoints the dashboard adds to the API: the upcoming-jobs timeline, and expire.

They are ordinary documented operations (passed to ``create_app`` as ``extra_endpoints``), so
scripts and other tools can use them too.
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .. import validate
from ..http import partitioned, schemas
from ..http.endpoint import Endpoint, Param, json_response
from ..http.errors import ApiError
from ..http.paths import path_param
from ..http.reading import read_json
from ..http.routes_jobs import not_found
from ..http.runtime import runtime
from ..partition_setting import read_timeline

_EMPTY = msgspec.json.Decoder(schemas.Kick)  # an empty object: expire takes no options


class TimelineOut(msgspec.Struct):
    """Scheduled jobs falling due per step ahead, and how long the ready jobs have waited."""

    topic: str
    now: datetime
    width: float
    counts: list[int]
    oldest_ready: datetime | None


class Expired(msgspec.Struct):
    """The reservation was ended; ``state`` is where the job went (ready, scheduled, dead)."""

    expired: bool
    state: str | None


def _number(request: Request, name: str, default: float) -> float:
    text = request.query_params.get(name)
    if text is None:
        return default
    return validate.number_text(text, name)


async def timeline(request: Request) -> Response:
    """GET /v1/topics/{topic}/timeline?width=&buckets=."""
    topic = path_param(request, "topic")
    width = _number(request, "width", 60)
    buckets = validate.integer_text(request.query_params.get("buckets", "60"), "buckets")
    rt = runtime(request)
    layout = await partitioned.layout(rt, topic)  # a partitioned topic: its partitions added up
    count = None if layout is None else layout.count
    call = read_timeline(rt.client.ops, topic, count, width=width, buckets=buckets)
    found = await rt.client.execute(call)
    out = TimelineOut(found.topic, found.now, found.width, found.counts, found.oldest_ready)
    return json_response(out)


async def expire(request: Request) -> Response:
    """POST /v1/topics/{topic}/jobs/{id}/expire."""
    rt = runtime(request)
    topic, job_id = await partitioned.job_path(request)
    await read_json(request, _EMPTY, rt.settings.max_request_size, empty=b"{}")
    topic, expired = await partitioned.finding(
        request, topic, lambda name: rt.client.expire(name, job_id)
    )
    topic, job = await partitioned.finding(request, topic, lambda name: rt.client.get(name, job_id))
    if not expired:
        if job is None:
            raise not_found(topic, job_id)
        raise ApiError(409, "not_reserved", f"job {job_id!r} is {job.state.value}", "id")
    return json_response(Expired(True, None if job is None else job.state.value))


ENDPOINTS = (
    Endpoint(
        "GET", "/v1/topics/{topic}/timeline", timeline,
        "Scheduled jobs falling due per step ahead, and the oldest ready job's due time",
        responses={200: TimelineOut},
        params=(
            Param("width", "query", {"type": "number", "minimum": 1, "maximum": 86400},
                  description="Seconds per step (default 60)."),
            Param("buckets", "query", {"type": "integer", "minimum": 1, "maximum": 1440},
                  description="How many steps (default 60)."),
        ),
        tag="topics",
    ),
    Endpoint(
        "POST", "/v1/topics/{topic}/jobs/{id}/expire", expire,
        "End a stuck reservation now, as if its ttr had run out", schemas.Kick,
        body_required=False,
        responses={200: Expired, 404: schemas.Error, 409: schemas.Error},
    ),
)  # fmt: skip
"""The dashboard's JSON operations, documented in /openapi.json."""
