"""Routes for operating a topic: bulk actions by id, purge, topic deletion, reschedule, run now.

A bulk action names the jobs it was shown (``ids``) and, for a selection taken from a listing,
the state they were listed in: jobs that moved since act not, and the answer says how many of
those requested were acted on. Purge and topic deletion run in bounded chunks (see
:mod:`redisched.operate`), so Redis serves other clients while a million jobs go.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from .. import validate
from ..client import AsyncClient
from ..errors import TopicBusy
from ..models import JobState
from . import bodies, partitioned, schemas
from .endpoint import Endpoint, Param, json_response
from .errors import ApiError, etag
from .partitioned import by_partition, each_partition, finding, job_path, up_to
from .paths import path_param
from .reading import query_flag, read_json
from .routes_jobs import not_found
from .runtime import runtime

_BULK = msgspec.json.Decoder(schemas.BulkIn)
_PURGE = msgspec.json.Decoder(schemas.PurgeIn)
_RESCHEDULE = msgspec.json.Decoder(schemas.RescheduleIn)
_EMPTY = msgspec.json.Decoder(schemas.Kick)
_KICK_ALL = msgspec.json.Decoder(schemas.KickAll)

Action = Callable[[AsyncClient, str, list[str], JobState | None], Awaitable[int]]


async def _delete(client: AsyncClient, topic: str, ids: list[str], state: JobState | None) -> int:
    return await client.delete_many(topic, ids, state=state)


async def _kick(client: AsyncClient, topic: str, ids: list[str], state: JobState | None) -> int:
    _only(state, JobState.DEAD, "kick")
    return await client.kick(topic, ids=ids)


async def _run_now(client: AsyncClient, topic: str, ids: list[str], state: JobState | None) -> int:
    _only(state, JobState.SCHEDULED, "run now")
    return await client.run_now_many(topic, ids)


async def _expire(client: AsyncClient, topic: str, ids: list[str], state: JobState | None) -> int:
    _only(state, JobState.RESERVED, "expire")
    return await client.expire_many(topic, ids)


def _only(state: JobState | None, allowed: JobState, action: str) -> None:
    if state is not None and state is not allowed:
        raise ApiError(400, "invalid", f"{action} acts on {allowed.value} jobs only", "state")


def _stored_ids(given: list[str | schemas.IdBytes]) -> list[str]:
    """The ids as the client takes them: an id given as bytes decoded with
    ``surrogateescape`` (:func:`redisched.validate.stored_id` sends those bytes back)."""
    ids: list[str] = []
    for index, value in enumerate(given):
        if isinstance(value, str):
            ids.append(value)
            continue
        field = f"ids[{index}]"
        try:  # a str with a character past ASCII raises ValueError, bad base64 its subclass
            data = base64.b64decode(value.data, validate=True)
        except ValueError:
            raise ApiError(400, "invalid", "is not valid base64", f"{field}.$base64") from None
        ids.append(validate.stored_text(data.decode("utf-8", "surrogateescape"), field))
    return ids


def bulk(name: str, action: Action) -> Callable[[Request], Awaitable[Response]]:
    """The handler of ``POST /v1/topics/{topic}/bulk/<name>``."""

    async def handler(request: Request) -> Response:
        rt = runtime(request)
        topic = path_param(request, "topic")
        spec = await read_json(request, _BULK, rt.settings.max_request_size)
        rt.client.ops.keys(topic)  # a bad topic is a 400 before anything runs
        ids = list(dict.fromkeys(_stored_ids(spec.ids)))
        done = await by_partition(
            rt, topic, ids, lambda name, group: action(rt.client, name, group, spec.state)
        )
        rt.topic_changed(topic)
        return json_response(schemas.BulkOut(name, len(ids), done))

    handler.__name__ = f"bulk_{name.replace('-', '_')}"
    return handler


async def kick_all(request: Request) -> Response:
    """POST /v1/topics/{topic}/kick."""
    rt = runtime(request)
    topic = path_param(request, "topic")
    spec = await read_json(request, _KICK_ALL, rt.settings.max_request_size, empty=b"{}")
    kicked = await up_to(rt, topic, spec.limit, lambda name, n: rt.client.kick(name, limit=n))
    rt.topic_changed(topic)
    return json_response(schemas.Kicked(kicked))


async def purge(request: Request) -> Response:
    """POST /v1/topics/{topic}/purge."""
    rt = runtime(request)
    topic = path_param(request, "topic")
    spec = await read_json(request, _PURGE, rt.settings.max_request_size)
    deleted = await each_partition(rt, topic, lambda name: rt.client.purge(name, spec.state))
    rt.topic_changed(topic)
    return json_response(schemas.Purged(topic, deleted, spec.state))


async def delete_topic(request: Request) -> Response:
    """DELETE /v1/topics/{topic}?force=."""
    rt = runtime(request)
    topic = path_param(request, "topic")
    force = query_flag(request, "force")
    try:
        deleted = await partitioned.delete_topic(rt, topic, force)
    except TopicBusy as exc:
        raise ApiError(409, "busy", str(exc), "force") from exc
    rt.topic_changed(topic)
    return json_response(schemas.Purged(topic, deleted))


async def _job_answer(client: AsyncClient, topic: str, job_id: str) -> Response:
    job = await client.execute(client.ops.get(topic, job_id, own=True))  # topic: where found
    if job is None:
        raise not_found(topic, job_id)
    return json_response(bodies.job_out(job), 200, {"ETag": etag(job.version)})


async def reschedule(request: Request) -> Response:
    """POST /v1/topics/{topic}/jobs/{id}/reschedule."""
    rt = runtime(request)
    topic, job_id = await job_path(request)
    spec = await read_json(request, _RESCHEDULE, rt.settings.max_request_size, empty=b"{}")
    topic, result = await finding(
        request, topic,
        lambda name: rt.client.reschedule(
            name, job_id, delay=spec.delay, run_at=spec.run_at, priority=spec.priority
        ),
    )  # fmt: skip
    if result is None:
        raise not_found(topic, job_id)
    rt.topic_changed(topic)
    return await _job_answer(rt.client, topic, job_id)


async def run_now(request: Request) -> Response:
    """POST /v1/topics/{topic}/jobs/{id}/run-now."""
    rt = runtime(request)
    topic, job_id = await job_path(request)
    await read_json(request, _EMPTY, rt.settings.max_request_size, empty=b"{}")
    topic, ran = await finding(request, topic, lambda name: rt.client.run_now(name, job_id))
    if not ran:
        topic, job = await finding(request, topic, lambda name: rt.client.get(name, job_id))
        if job is None:
            raise not_found(topic, job_id)
        raise ApiError(
            409, "not_scheduled", f"job {job_id!r} is {job.state.value}, not scheduled", "id"
        )
    rt.topic_changed(topic)
    return await _job_answer(rt.client, topic, job_id)


_TOPIC = "/v1/topics/{topic}"
_JOB = "/v1/topics/{topic}/jobs/{id}"
_BULK_ACTIONS: tuple[tuple[str, Action, str], ...] = (
    ("delete", _delete, "Delete jobs by id (with state: only those still in it)"),
    ("kick", _kick, "Move the dead jobs among ids back to ready"),
    ("run-now", _run_now, "Make the scheduled jobs among ids ready at once"),
    ("expire", _expire, "End the reservations of the reserved jobs among ids now"),
)
_ERRORS = {400: schemas.Error}

ENDPOINTS = (
    *(
        Endpoint(
            "POST", f"{_TOPIC}/bulk/{name}", bulk(name, action), summary, schemas.BulkIn,
            responses={200: schemas.BulkOut, **_ERRORS}, tag="operate",
        )
        for name, action, summary in _BULK_ACTIONS
    ),
    Endpoint(
        "POST", f"{_TOPIC}/kick", kick_all,
        "Move up to limit dead jobs back to ready, those that died first first",
        schemas.KickAll, body_required=False, responses={200: schemas.Kicked, **_ERRORS},
        tag="operate",
    ),
    Endpoint(
        "POST", f"{_TOPIC}/purge", purge,
        "Delete every job in one state (not reserved), in bounded chunks", schemas.PurgeIn,
        responses={200: schemas.Purged, **_ERRORS}, tag="operate",
    ),
    Endpoint(
        "DELETE", _TOPIC, delete_topic,
        "Delete a topic: its jobs, settings and counters (409 while jobs run, unless force)",
        responses={200: schemas.Purged, 409: schemas.Error, **_ERRORS},
        params=(Param("force", "query", {"type": "boolean"},
                      description="Delete even while jobs are reserved."),),
        tag="operate",
    ),
    Endpoint(
        "POST", f"{_JOB}/reschedule", reschedule,
        "Give a job a new due time and priority, keeping its body (a replace)",
        schemas.RescheduleIn, body_required=False,
        responses={200: schemas.JobOut, 404: schemas.Error, **_ERRORS}, tag="operate",
    ),
    Endpoint(
        "POST", f"{_JOB}/run-now", run_now, "Make a scheduled job ready at once", schemas.Kick,
        body_required=False,
        responses={200: schemas.JobOut, 404: schemas.Error, 409: schemas.Error}, tag="operate",
    ),
)  # fmt: skip
"""The operator's routes, documented in /openapi.json."""
