"""History routes: a job's history, a topic's finished jobs, and its event feed (JSON or SSE).

``GET /v1/topics/{topic}/events`` answers JSON, or with ``Accept: text/event-stream`` a live
Server-Sent Events tail: each event's ``id:`` is its cursor, so a browser's ``EventSource``
resumes after a disconnect where it left off (``Last-Event-ID``). The tail reads the feed
again every ``POLL_INTERVAL`` while it is idle (one XRANGE, no connection held in between),
and ends as soon as the server begins to stop, as long polls do, so that an open tail does not
hold up a graceful shutdown (the client reconnects and resumes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from .. import shapes
from ..client import AsyncClient
from ..errors import BackendError, InvalidArgument
from ..models import JobEvent
from ..partition_setting import finished_page, no_feed, run_async
from ..shapes import event_out, history_out
from . import schemas
from .endpoint import ENCODER, Endpoint, Param, json_response
from .errors import ApiError
from .partitioned import finding, layout, route
from .paths import path_param
from .routes_topics import query_int
from .runtime import runtime

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.25
"""Seconds between two reads of an idle feed by an SSE tail."""
KEEPALIVE = 15.0
"""Seconds of silence after which an SSE tail sends a comment, so proxies keep it open."""


async def get_history(request: Request) -> Response:
    """GET /v1/topics/{topic}/jobs/{id}/history."""
    rt = runtime(request)
    topic, job_id = path_param(request, "topic"), path_param(request, "id", stored=True)
    # a finished job's record counts: a finished occurrence stays with its schedule
    topic = await route(rt, topic, job_id, finished=True)
    client = rt.client
    topic, history = await finding(request, topic, lambda name: client.history(name, job_id))
    if history is None:
        raise ApiError(404, "not_found", f"no history of job {job_id!r} in {topic!r}", "id")
    return json_response(history_out(history))


async def list_finished(request: Request) -> Response:
    """GET /v1/topics/{topic}/finished?outcome=&limit=&cursor= (a partitioned topic's:
    partition after partition, as job listings)."""
    rt = runtime(request)
    topic = path_param(request, "topic")
    outcome = request.query_params.get("outcome") or None
    limit = query_int(request, "limit", 50, 1, 100)
    cursor = request.query_params.get("cursor") or None
    found = await layout(rt, topic)
    if found is None:
        # own: a topic partitioned since the counts were read answers as before, until they are
        listing = rt.client.ops.finished
        page = await rt.client.execute(
            listing(topic, outcome=outcome, limit=limit, cursor=cursor, own=True)
        )
    else:  # partition after partition
        flow = finished_page(rt.client.ops, found, outcome=outcome, limit=limit, cursor=cursor)
        page = await run_async(rt.client, flow)
    return json_response(schemas.FinishedPageOut([history_out(h) for h in page.jobs], page.cursor))


async def list_events(request: Request) -> Response:
    """GET /v1/topics/{topic}/events?after=&limit= (JSON, or an SSE tail)."""
    rt = runtime(request)
    client = rt.client
    topic = path_param(request, "topic")
    limit = query_int(request, "limit", 100, 1, 1000)
    after = request.query_params.get("after") or None
    partitions = await layout(rt, topic)
    if partitions is not None:  # each partition has its own feed (and cursors): none of them
        raise ApiError(400, "partitioned", no_feed(partitions).message, "topic")
    # An EventSource reconnects to the same URL (its ?after= included) with the id of the
    # last event it received: that one is the later position, so it wins.
    resumed = request.headers.get("last-event-id")
    if resumed:
        after = resumed
    try:
        events = await client.events(topic, after=after, limit=limit)  # checks topic and cursor
    except InvalidArgument as exc:
        if resumed and exc.argument == "after":
            raise InvalidArgument("Last-Event-ID", exc.message) from None
        raise
    if "text/event-stream" in request.headers.get("accept", ""):
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        if request.method == "HEAD":  # no body ever goes out: a tail would never end
            return Response(status_code=200, media_type="text/event-stream", headers=headers)
        return StreamingResponse(
            _tail(client, topic, events, after, limit, rt.closing),
            media_type="text/event-stream",
            headers=headers,
        )
    cursor = events[-1].cursor if events else after
    return json_response(schemas.EventsOut([event_out(e) for e in events], cursor))


def sse_message(event: JobEvent) -> bytes:
    """One event as a Server-Sent Events message, its cursor as the ``id``."""
    data = shapes.encode(ENCODER, event_out(event))
    return b"id: " + (event.cursor or "").encode() + b"\nevent: job\ndata: " + data + b"\n\n"


async def _tail(
    client: AsyncClient,
    topic: str,
    first: list[JobEvent],
    after: str | None,
    limit: int,
    closing: asyncio.Event,
) -> AsyncIterator[bytes]:
    """The SSE stream: ``first``, then each new event, until the client goes or ``closing``
    is set (the server is stopping)."""
    yield b"retry: 1000\n\n"
    events, idle = first, 0.0
    while not closing.is_set():
        for event in events:
            yield sse_message(event)
        if events:
            after, idle = events[-1].cursor, 0.0
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closing.wait(), POLL_INTERVAL)
            if closing.is_set():
                return
            idle += POLL_INTERVAL
            if idle >= KEEPALIVE:
                idle = 0.0
                yield b": keep-alive\n\n"
        try:
            events = await client.events(topic, after=after, limit=limit)
        except BackendError as exc:  # an outage: the stream waits it out (its reads retried)
            log.warning("events of %r: %s; the stream goes on after it", topic, exc)
            events = []


_TOPIC = "/v1/topics/{topic}"
_LIMIT = {"type": "integer", "minimum": 1}
ENDPOINTS = (
    Endpoint(
        "GET", f"{_TOPIC}/jobs/{{id}}/history", get_history,
        "A job's history: events, outcome, result (live or finished)",
        responses={200: schemas.HistoryOut, 404: schemas.Error}, tag="history",
    ),
    Endpoint(
        "GET", f"{_TOPIC}/finished", list_finished,
        "One page of a topic's finished jobs, most recent first",
        responses={200: schemas.FinishedPageOut},
        params=(
            Param("outcome", "query", {"type": "string",
                                       "enum": ["done", "cancelled", "dead", "pulled", "aborted"]}),
            Param("limit", "query", {**_LIMIT, "maximum": 100}),
            Param("cursor", "query", {"type": "string"}, description="From the last page."),
        ),
        tag="history",
    ),
    Endpoint(
        "GET", f"{_TOPIC}/events", list_events,
        "A topic's event feed, oldest first; Accept: text/event-stream for a live tail",
        responses={200: schemas.EventsOut},
        params=(
            Param("after", "query", {"type": "string"}, description="The last cursor seen."),
            Param("limit", "query", {**_LIMIT, "maximum": 1000}),
            Param("Last-Event-ID", "header", {"type": "string"},
                  description="SSE resume: the id of the last event received (wins over after)."),
        ),
        tag="history",
    ),
)  # fmt: skip
"""The history routes."""
