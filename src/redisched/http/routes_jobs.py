"""Routes on one job: put (replace semantics), get, delete, and ack/release/touch/bury/kick.

PUT follows HTTP: it creates (201) or replaces (200) the job; when the job is running, the
replacement waits for the attempt to end (202). ``If-None-Match: *`` makes it create-only and
``If-Match: <version>`` a compare-and-set; either answers 412 when it does not hold. The
ETag of a job is its version. The answer carries the job as stored, which put.lua returns
with its status (a pending replacement, 202, reads the running job in a second call); a
producer that does not need it sends ``Prefer: return=minimal`` and gets
``{"topic", "id", "version", "status"}``.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ..client import AsyncClient
from ..convert import shown
from ..errors import StaleReservation, TopicPartitioned
from ..models import Job, PutResult, PutStatus
from ..ops import Call
from ..partitions import SEPARATOR
from . import bodies, schemas
from .endpoint import Endpoint, Param, json_response
from .errors import ApiError, etag, etag_matches, parse_etag
from .partitioned import (
    finding,
    found_elsewhere,
    held_elsewhere,
    holding,
    job_path,
    put_routed,
    refuse_misrouted_put,
)
from .paths import NOT_UTF8
from .reading import header_values, read_json
from .runtime import runtime

_PUT = msgspec.json.Decoder(schemas.PutJob)
_ACK = msgspec.json.Decoder(schemas.Ack)
_RELEASE = msgspec.json.Decoder(schemas.Release)
_TOUCH = msgspec.json.Decoder(schemas.Touch)
_BURY = msgspec.json.Decoder(schemas.Bury)
_KICK = msgspec.json.Decoder(schemas.Kick)
_ABORT = msgspec.json.Decoder(schemas.Abort)
_PUT_HEADERS = (b"if-none-match", b"if-match", b"prefer")
_PUT_STATUS = {PutStatus.CREATED: 201, PutStatus.REPLACED: 200, PutStatus.PENDING: 202}


@dataclass(frozen=True, slots=True)
class Held:
    """A reservation named by the client: what ack/release/touch/bury need."""

    topic: str
    id: str
    token: str


def not_found(topic: str, job_id: str) -> ApiError:
    """The 404 of a job that does not exist."""
    text = shown(job_id)  # an id that is not UTF-8 as its \\xNN form, not \\udcNN escapes
    name = repr(job_id) if text == job_id else f"'{text}'"
    return ApiError(404, "not_found", f"no job {name} in topic {topic!r}", "id")


def stored_body(value: Any, limit: int, argument: str = "body") -> bytes:
    """The bytes to store for a JSON body; 413 when over the body limit."""
    data = bodies.to_stored(value, argument)
    if len(data) > limit:
        raise ApiError(
            413, "payload_too_large", f"the body is {len(data)} bytes; the limit is {limit}",
            argument,
        )  # fmt: skip
    return data


async def put_and_get(
    client: AsyncClient, call: Call[tuple[PutResult, Job | None]], topic: str, job_id: str
) -> tuple[PutResult, Job | None]:
    """Run a put built with ``read_back=True`` and read the job as stored: in put.lua's
    reply, or for a pending replacement (the running job stays) with a get."""
    result, job = await client.execute(call)
    if job is None and result.status is PutStatus.PENDING:
        job = await client.get(topic, job_id)
    return result, job


def wants_minimal(request: Request) -> bool:
    """True when the client sent ``Prefer: return=minimal`` (RFC 7240)."""
    return prefers_minimal(request.headers.get("prefer"))


def prefers_minimal(prefer: str | None) -> bool:
    """True when a ``Prefer`` header value asks for ``return=minimal`` (RFC 7240)."""
    return prefer is not None and "return=minimal" in prefer.replace(" ", "").lower()


async def write(
    client: AsyncClient, call: Call[Any], topic: str, job_id: str, minimal: bool
) -> Response:
    """Run a put (built with ``read_back=not minimal``) and answer 201/200/202 with the job
    (or the short form) and its ETag."""
    if minimal:
        result = await client.execute(call)
        job = None
    else:
        result, job = await put_and_get(client, call, topic, job_id)
    if result.status is PutStatus.EXISTS:
        raise ApiError(
            412, "exists", f"job {job_id!r} already exists in topic {topic!r}", "If-None-Match",
            {"ETag": etag(result.version)},
        )  # fmt: skip
    status, headers = _PUT_STATUS[result.status], {"ETag": etag(result.version)}
    if minimal:
        headers["Preference-Applied"] = "return=minimal"
        written = schemas.Written(topic, job_id, result.version, result.status.value)
        return json_response(written, status, headers)
    if job is None:  # deleted between the two scripts of the pipeline: impossible, but honest
        raise not_found(topic, job_id)
    return json_response(bodies.job_out(job), status, headers)


async def put_job(request: Request) -> Response:
    """PUT /v1/topics/{topic}/jobs/{id}."""
    rt = runtime(request)
    topic, job_id = await job_path(request, rt)
    if SEPARATOR in topic:  # a partition's name: only the ids that route to it
        await refuse_misrouted_put(rt, topic, job_id)
    if not job_id.isascii():
        try:
            job_id.encode("utf-8")
        except UnicodeEncodeError:  # only an existing job's id may be bytes (job_path)
            raise ApiError(400, "invalid", NOT_UTF8, "id") from None
    spec = await read_json(request, _PUT, rt.settings.max_request_size)
    if_none_match, if_match, prefer = header_values(request, _PUT_HEADERS)
    replace, if_version = True, None
    if if_none_match is not None:
        if if_none_match.strip() != "*":
            raise ApiError(400, "invalid_header", "If-None-Match on PUT must be *", "If-None-Match")
        if if_match is not None:
            raise ApiError(
                400, "invalid_header", "give If-Match or If-None-Match, not both", "If-None-Match"
            )
        replace = False
    elif if_match is not None:
        if_version = parse_etag(if_match, "If-Match")
    data = stored_body(spec.body, rt.settings.max_body_size)
    minimal = prefers_minimal(prefer)

    def put_into(name: str) -> Awaitable[Response]:
        call = rt.client.ops.put(
            name, job_id, data, delay=spec.delay, run_at=spec.run_at, ttr=spec.ttr,
            priority=spec.priority, max_attempts=spec.max_attempts, replace=replace,
            if_version=if_version, read_back=not minimal,
        )  # fmt: skip
        return write(rt.client, call, name, job_id, minimal)

    async def routed() -> str:
        return (await job_path(request, rt))[0]

    return await put_routed(rt, topic, put_into, routed)


async def get_job(request: Request) -> Response:
    """GET /v1/topics/{topic}/jobs/{id}."""
    topic, job_id = await job_path(request)
    client = runtime(request).client
    try:
        job = await client.get(topic, job_id)  # inline, not through finding(): a hot route
    except TopicPartitioned as refused:  # the topic itself, partitioned since it was routed
        runtime(request).partitions.learn(refused.topic, refused.count)
        job = None
    if job is None:
        topic, job = await found_elsewhere(request, topic, job, lambda n: client.get(n, job_id))
    if job is None:
        raise not_found(topic, job_id)
    # a pending replacement's version: the one If-Match compares with (put.lua, delete.lua)
    tag = etag(job.pending_version or job.version)
    if etag_matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers={"ETag": tag, "Cache-Control": "no-store"})
    return json_response(bodies.job_out(job), 200, {"ETag": tag})


async def delete_job(request: Request) -> Response:
    """DELETE /v1/topics/{topic}/jobs/{id}."""
    topic, job_id = await job_path(request)
    if_match = request.headers.get("if-match")
    if_version = None if if_match is None else parse_etag(if_match, "If-Match")
    client = runtime(request).client
    _, deleted = await finding(
        request, topic, lambda name: client.delete(name, job_id, if_version=if_version)
    )
    if not deleted:
        raise not_found(topic, job_id)
    return Response(status_code=204)


async def ack(request: Request) -> Response:
    """POST .../ack."""
    rt = runtime(request)
    topic, job_id = await job_path(request, rt)
    spec = await read_json(request, _ACK, rt.settings.max_request_size)
    result = (
        None
        if spec.result is msgspec.UNSET
        else stored_body(spec.result, rt.settings.max_body_size, "result")
    )
    try:  # inline, not through holding(): a hot route
        await rt.client.ack(Held(topic, job_id, spec.token), result=result)
    except StaleReservation as missed:
        await held_elsewhere(
            request, topic, missed,
            lambda name: rt.client.ack(Held(name, job_id, spec.token), result=result),
        )  # fmt: skip
    return Response(status_code=204)


async def release(request: Request) -> Response:
    """POST .../release."""
    rt = runtime(request)
    topic, job_id = await job_path(request)
    spec = await read_json(request, _RELEASE, rt.settings.max_request_size)
    _, state = await holding(
        request, topic,
        lambda name: rt.client.release(
            Held(name, job_id, spec.token), delay=spec.delay, reason=spec.reason
        ),
    )  # fmt: skip
    return json_response(schemas.Released(state))


async def touch(request: Request) -> Response:
    """POST .../touch."""
    rt = runtime(request)
    topic, job_id = await job_path(request)
    spec = await read_json(request, _TOUCH, rt.settings.max_request_size)
    _, until = await holding(
        request, topic, lambda name: rt.client.touch(Held(name, job_id, spec.token), ttr=spec.ttr)
    )
    return json_response(schemas.Touched(until))


async def bury(request: Request) -> Response:
    """POST .../bury."""
    rt = runtime(request)
    topic, job_id = await job_path(request)
    spec = await read_json(request, _BURY, rt.settings.max_request_size)
    await holding(
        request,
        topic,
        lambda name: rt.client.bury(Held(name, job_id, spec.token), reason=spec.reason),
    )
    return Response(status_code=204)


async def kick(request: Request) -> Response:
    """POST .../kick."""
    rt = runtime(request)
    topic, job_id = await job_path(request)
    await read_json(request, _KICK, rt.settings.max_request_size, empty=b"{}")
    topic, kicked = await finding(request, topic, lambda name: rt.client.kick(name, job_id))
    if kicked:
        return json_response(schemas.Kicked(1))
    topic, job = await finding(request, topic, lambda name: rt.client.get(name, job_id))
    if job is None:
        raise not_found(topic, job_id)
    raise ApiError(409, "not_dead", f"job {job_id!r} is {job.state.value}, not dead", "id")


async def abort(request: Request) -> Response:
    """POST .../abort: stop the job, cancelling its handler if it runs."""
    rt = runtime(request)
    topic, job_id = await job_path(request)
    spec = await read_json(request, _ABORT, rt.settings.max_request_size, empty=b"{}")
    _, aborted = await finding(
        request, topic, lambda name: rt.client.abort(name, job_id, reason=spec.reason)
    )
    if not aborted:
        raise not_found(topic, job_id)
    return Response(status_code=204)


_JOB = "/v1/topics/{topic}/jobs/{id}"
_IF_MATCH = Param("If-Match", "header", {"type": "string"}, description="CAS on this version.")
_IF_NONE_MATCH = Param("If-None-Match", "header", {"type": "string"}, description="* = create.")
PREFER = Param(
    "Prefer", "header", {"type": "string", "enum": ["return=minimal", "return=representation"]},
    description="return=minimal: answer with the version only, without reading the job back.",
)  # fmt: skip
WRITTEN = (schemas.JobOut, schemas.Written)
_STALE = {409: schemas.Error, 404: schemas.Error}

ENDPOINTS = (
    Endpoint(
        "PUT", _JOB, put_job, "Create or replace a job", schemas.PutJob,
        responses={201: WRITTEN, 200: WRITTEN, 202: WRITTEN, 412: schemas.Error,
                   413: schemas.Error},
        params=(_IF_MATCH, _IF_NONE_MATCH, PREFER),
    ),
    Endpoint(
        "GET", _JOB, get_job, "Read a job", responses={200: schemas.JobOut, 304: None,
                                                       404: schemas.Error},
        params=(Param("If-None-Match", "header", {"type": "string"}),),
    ),
    Endpoint(
        "DELETE", _JOB, delete_job, "Delete a job in any state",
        responses={204: None, 404: schemas.Error, 412: schemas.Error}, params=(_IF_MATCH,),
    ),
    Endpoint(
        "POST", f"{_JOB}/ack", ack, "Finish a reserved job", schemas.Ack,
        responses={204: None, 409: schemas.Error},
    ),
    Endpoint(
        "POST", f"{_JOB}/release", release, "Give a reserved job back", schemas.Release,
        responses={200: schemas.Released, 409: schemas.Error},
    ),
    Endpoint(
        "POST", f"{_JOB}/touch", touch, "Extend a reservation", schemas.Touch,
        responses={200: schemas.Touched, 409: schemas.Error},
    ),
    Endpoint(
        "POST", f"{_JOB}/bury", bury, "Move a reserved job to dead", schemas.Bury,
        responses={204: None, 409: schemas.Error},
    ),
    Endpoint(
        "POST", f"{_JOB}/kick", kick, "Move a dead job back to ready", schemas.Kick,
        body_required=False, responses={200: schemas.Kicked, **_STALE},
    ),
    Endpoint(
        "POST", f"{_JOB}/abort", abort, "Stop a job; a running handler is cancelled",
        schemas.Abort, body_required=False, responses={204: None, 404: schemas.Error},
    ),
)  # fmt: skip
"""The job routes."""
